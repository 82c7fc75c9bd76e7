package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// Project keys: Arca's extension beside the Barbican resources
// (docs/project-keys.md). The project addressed is ?project_id= when given,
// else the caller's; policy decides whether the caller may address it
// (project_key:* rules: its own project; any with the object servers' or
// the filter's role; rotation and destruction also for
// key-manager:service-admin and a system admin).
// Targets carry the project of the stored key row, never one taken on
// trust from the request.

// projectKeyView is a project key as the API shows it (never material).
type projectKeyView struct {
	KeyID       string  `json:"key_id"`
	KeyRef      string  `json:"key_ref"`
	ProjectID   string  `json:"project_id"`
	Status      string  `json:"status"`
	Algorithm   string  `json:"algorithm"`
	BitLength   int     `json:"bit_length"`
	CreatorID   *string `json:"creator_id"`
	Created     string  `json:"created"`
	Deactivated *string `json:"deactivated"`
	Destroyed   *string `json:"destroyed"`
}

func (s *Server) renderProjectKey(c echo.Context, k *keyservice.ProjectKey) projectKeyView {
	v := projectKeyView{
		KeyID: k.ID, KeyRef: s.baseURL(c) + "/v1/project-keys/" + k.ID, ProjectID: k.ProjectID,
		Status: k.Status, Algorithm: k.Algorithm, BitLength: k.BitLength,
		CreatorID: nullable(k.CreatorID), Created: FormatTimestamp(k.Created),
	}
	if k.Deactivated != nil {
		t := FormatTimestamp(*k.Deactivated)
		v.Deactivated = &t
	}
	if k.Destroyed != nil {
		t := FormatTimestamp(*k.Destroyed)
		v.Destroyed = &t
	}
	return v
}

func projectKeyTarget(projectID string) Target {
	return Target{Kind: "project_key", ProjectID: projectID}
}

// addressedProject is the project a project-key request is about.
func addressedProject(c echo.Context) (string, error) {
	p, given := c.QueryParams()["project_id"]
	if !given {
		return callerOf(c).ProjectID, nil
	}
	if len(p) != 1 || !keyservice.ValidProjectID(p[0]) {
		return "", invalid("Invalid 'project_id'.")
	}
	return p[0], nil
}

// addressed is the resource of the project-key routes that address a
// project rather than a key (active, rotate, list).
type addressed string

// projectLoader is the loader of those routes: the addressed project, the
// target of the policy check. A malformed ?project_id= is refused and
// audited as action refused, under the caller's project.
func (s *Server) projectLoader(action string) func(echo.Context) (any, Target, error) {
	return func(c echo.Context) (any, Target, error) {
		project, err := addressedProject(c)
		if err != nil {
			s.auditKeyRefusal(c, action, nil, err)
			return nil, Target{}, err
		}
		return addressed(project), projectKeyTarget(project), nil
	}
}

// projectDenied audits a refusal by policy on the addressed project.
func (s *Server) projectDenied(action string) func(echo.Context, any, error) error {
	return func(c echo.Context, res any, err error) error {
		project, _ := res.(addressed)
		s.svc.AuditProjectKeyAccess(c.Request().Context(), callerOf(c), action, string(project), "", err, "")
		return err
	}
}

func (s *Server) getActiveProjectKey(c echo.Context) error {
	p, err := loaded[addressed](c)
	if err != nil {
		return err
	}
	project := string(p)
	ctx, caller := c.Request().Context(), callerOf(c)
	// Reading the active id and making the project's first key are two
	// decisions: the filter's role may do the first only.
	target := projectKeyTarget(project)
	mayCreate := func(ctx context.Context) error {
		return s.authz.Authorize(ctx, "project_key:create", caller, target)
	}
	k, err := s.svc.ActiveProjectKeyWith(ctx, caller, project, mayCreate)
	if err != nil {
		s.svc.AuditProjectKeyAccess(ctx, caller, keyservice.AuditGetActive, project, "", err, "")
		return err
	}
	// Another project's active id is what the object servers and the
	// filter read: each such read is recorded, under the key's project.
	if _, named := c.QueryParams()["project_id"]; named {
		s.svc.AuditProjectKeyAccess(ctx, caller, keyservice.AuditGetActive, project, k.ID, nil, "")
	}
	s.sayActiveKeyCacheTTL(c)
	return c.JSON(http.StatusOK, s.renderProjectKey(c, k))
}

func (s *Server) rotateProjectKey(c echo.Context) error {
	project, err := loaded[addressed](c)
	if err != nil {
		return err
	}
	k, err := s.svc.RotateProjectKey(c.Request().Context(), callerOf(c), string(project))
	if err != nil {
		return err
	}
	s.sayActiveKeyCacheTTL(c)
	return c.JSON(http.StatusCreated, s.renderProjectKey(c, k))
}

// sayActiveKeyCacheTTL tells the caller of an answer naming the active key
// how long it may hold that id as active: the destroy guard
// (keyservice.ActiveKeyCacheTTLHeader).
func (s *Server) sayActiveKeyCacheTTL(c echo.Context) {
	c.Response().Header().Set(keyservice.ActiveKeyCacheTTLHeader, keyservice.ActiveKeyCacheTTLValue(s.svc.ActiveKeyCacheTTL()))
}

func (s *Server) listProjectKeys(c echo.Context) error {
	project, err := loaded[addressed](c)
	if err != nil {
		return err
	}
	limit, offset, err := pageParams(c.QueryParams())
	if err != nil {
		return err
	}
	list, total, err := s.svc.ListProjectKeys(c.Request().Context(), string(project), limit, offset)
	if err != nil {
		return err
	}
	items := make([]projectKeyView, 0, len(list))
	for _, k := range list {
		items = append(items, s.renderProjectKey(c, k))
	}
	return s.listPage(c, "project_keys", items, "/v1/project-keys", limit, offset, total)
}

// projectKeyLoader is the loader of the /v1/project-keys/{id} routes: the
// key in the path, and the target of its stored row (its project). A key
// that is not the ?project_id= project's is reported as not found; action
// audits every failure, under the key's real project when it exists, so
// that its owners see probes from elsewhere.
func (s *Server) projectKeyLoader(action string) func(echo.Context) (any, Target, error) {
	return func(c echo.Context) (any, Target, error) {
		id := c.Param("id")
		project := ""
		var malformed error
		_, given := c.QueryParams()["project_id"]
		if given {
			project, malformed = addressedProject(c)
		}
		k, err := s.svc.LoadProjectKeyByID(c.Request().Context(), id)
		switch {
		case malformed != nil:
			// refused, and audited under the key's project when the key
			// exists, as any other refusal
			err = malformed
		case err == nil && given && k.ProjectID != project:
			err = keyservice.Errorf(keyservice.ErrNotFound, "Project key not found.")
		}
		if err != nil {
			s.auditKeyRefusal(c, action, k, err)
			return nil, Target{}, err
		}
		return k, projectKeyTarget(k.ProjectID), nil
	}
}

// projectKeyDenied answers a refusal by policy on a key: not found, unless
// the caller belongs to the key's project (the API never confirms that a
// key exists in another project; only its own project learns that policy
// refused, 403). The refusal is audited.
func (s *Server) projectKeyDenied(action string) func(echo.Context, any, error) error {
	return func(c echo.Context, res any, err error) error {
		k, _ := res.(*keyservice.ProjectKey)
		if k == nil || (errors.Is(err, keyservice.ErrForbidden) && callerOf(c).ProjectID != k.ProjectID) {
			err = keyservice.Errorf(keyservice.ErrNotFound, "Project key not found.")
		}
		s.auditKeyRefusal(c, action, k, err)
		return err
	}
}

// auditKeyRefusal records a refused or failed access to the key in the
// path; k is the stored key when it was found.
func (s *Server) auditKeyRefusal(c echo.Context, action string, k *keyservice.ProjectKey, err error) {
	caller := callerOf(c)
	audited, detail := caller.ProjectID, ""
	if p, given := c.QueryParams()["project_id"]; given {
		// what the client sent goes into the record only when it is a
		// project id: the table's columns bound what a record holds
		if len(p) == 1 && keyservice.ValidProjectID(p[0]) {
			audited, detail = p[0], "addressed project "+p[0]
		} else {
			detail = "malformed project_id"
		}
	}
	if k != nil {
		audited = k.ProjectID
	}
	s.svc.AuditProjectKeyAccess(c.Request().Context(), caller, action, audited, auditKeyID(c.Param("id")), err, detail)
}

// loadProjectKey returns the key in the path, loaded and authorized by the
// route wrapper (projectKeyLoader).
func (s *Server) loadProjectKey(c echo.Context) (*keyservice.ProjectKey, error) {
	return loaded[*keyservice.ProjectKey](c)
}

// auditKeyID keeps what a client sent as a key id out of the audit table
// unless it looks like one.
func auditKeyID(id string) string {
	if len(id) > 64 || strings.ContainsAny(id, "\x00\r\n") {
		return ""
	}
	return id
}

func (s *Server) getProjectKey(c echo.Context) error {
	k, err := s.loadProjectKey(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.renderProjectKey(c, k))
}

func (s *Server) getProjectKeyPayload(c echo.Context) error {
	k, err := s.loadProjectKey(c)
	if err != nil {
		return err
	}
	material, err := s.svc.ProjectKeyMaterial(c.Request().Context(), callerOf(c), k)
	if err != nil {
		return err
	}
	defer clear(material)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Arca-Key-Algorithm", k.Algorithm)
	return c.Blob(http.StatusOK, keyservice.ContentTypeBinary, material)
}

// getProjectKeyListingKey answers a key's listing key (objcrypt's
// DeriveListingKey), raw bytes as the payload route answers, never the
// key itself.
func (s *Server) getProjectKeyListingKey(c echo.Context) error {
	k, err := s.loadProjectKey(c)
	if err != nil {
		return err
	}
	listing, err := s.svc.ProjectKeyListingKey(c.Request().Context(), callerOf(c), k)
	if err != nil {
		return err
	}
	defer clear(listing)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.Blob(http.StatusOK, keyservice.ContentTypeBinary, listing)
}

// validPage checks a list's limit and offset.
func validPage(c echo.Context) error {
	_, _, err := pageParams(c.QueryParams())
	return err
}

// validForce checks DELETE's force parameter.
func validForce(c echo.Context) error {
	_, err := parseBool(c.QueryParams(), "force")
	return err
}

// auditRefused makes a project-key route's validation audit what it
// refuses as action refused, under the addressed project or the caller's:
// the validation runs before anything is read, the key included.
func (s *Server) auditRefused(action string, validate func(echo.Context) error) func(echo.Context) error {
	return func(c echo.Context) error {
		err := validate(c)
		if err != nil {
			s.auditKeyRefusal(c, action, nil, err)
		}
		return err
	}
}

func (s *Server) deleteProjectKey(c echo.Context) error {
	force, err := parseBool(c.QueryParams(), "force")
	if err != nil {
		return err
	}
	k, err := s.loadProjectKey(c)
	if err != nil {
		return err
	}
	if err := s.svc.DestroyProjectKey(c.Request().Context(), callerOf(c), k, force); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
