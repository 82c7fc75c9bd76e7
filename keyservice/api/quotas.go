package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// Quotas: GET /v1/quotas shows the caller's effective quotas; the
// /v1/project-quotas routes manage configured ones (a system-scoped reader
// or admin by default, as in Barbican). The project in the path is what is
// addressed, not a policy input. All are collection routes: the route
// wrapper checks their rules before these handlers run.

func (s *Server) getQuotas(c echo.Context) error {
	q, err := s.svc.EffectiveQuotas(c.Request().Context(), callerOf(c).ProjectID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quotas": q})
}

func (s *Server) listProjectQuotas(c echo.Context) error {
	limit, offset, err := pageParams(c.QueryParams())
	if err != nil {
		return err
	}
	list, total, err := s.svc.ListProjectQuotas(c.Request().Context(), limit, offset)
	if err != nil {
		return err
	}
	items := make([]map[string]any, 0, len(list))
	for _, pq := range list {
		items = append(items, map[string]any{"project_id": pq.ProjectID, "project_quotas": pq.Quotas})
	}
	return s.listPage(c, "project_quotas", items, "/v1/project-quotas", limit, offset, total)
}

func (s *Server) getProjectQuotas(c echo.Context) error {
	pq, err := s.svc.ProjectQuotas(c.Request().Context(), c.Param("project"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"project_quotas": pq.Quotas})
}

// decodeProjectQuotas reads {"project_quotas": {"secrets": N, ...}};
// resources left out fall back to the defaults.
func decodeProjectQuotas(raw []byte) (keyservice.Quotas, error) {
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	inner, ok := obj["project_quotas"]
	var fields map[string]json.RawMessage
	if !ok || json.Unmarshal(inner, &fields) != nil || fields == nil {
		return nil, invalid(`Invalid quotas: expected {"project_quotas": {"secrets": N, "orders": N, "containers": N, "consumers": N, "cas": N}}.`)
	}
	q := keyservice.Quotas{}
	for _, r := range keyservice.QuotaResources {
		v, err := optInt(fields, r, keyservice.Unlimited, 1<<31-1)
		if err != nil {
			return nil, err
		}
		if v != nil {
			q[r] = *v
		}
		delete(fields, r)
	}
	for k := range fields {
		return nil, invalid("Invalid quotas: unknown resource '" + k + "'.")
	}
	return q, nil
}

func (s *Server) putProjectQuotas(c echo.Context) error {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return err
	}
	q, err := decodeProjectQuotas(body(c))
	if err != nil {
		return err
	}
	if err := s.svc.SetProjectQuotas(c.Request().Context(), c.Param("project"), q); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deleteProjectQuotas(c echo.Context) error {
	if err := s.svc.DeleteProjectQuotas(c.Request().Context(), c.Param("project")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
