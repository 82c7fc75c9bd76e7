package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// The /v1/secret-stores resource (keyservice/secretstores.go), with
// Barbican's shapes and statuses. As in Barbican, a route naming a store
// looks the store up before policy runs (404 when multiple stores are off
// or the store does not exist, whoever asks), while the collection routes
// check policy first; the project is always the token's own.

// secretStoreBody is a store as Barbican shows it.
func (s *Server) secretStoreBody(st keyservice.SecretStoreInfo) map[string]any {
	created := FormatTimestamp(st.Created)
	return map[string]any{
		"secret_store_ref":    s.hostHref + "/v1/secret-stores/" + st.ID,
		"name":                st.Name,
		"secret_store_plugin": st.StorePlugin,
		"crypto_plugin":       st.CryptoPlugin,
		"global_default":      st.GlobalDefault,
		"status":              keyservice.StatusActive,
		"created":             created,
		"updated":             created,
	}
}

// secretStoreLoader loads the store named in the path; the policy target
// is the caller's project (stores belong to the deployment).
func (s *Server) secretStoreLoader(c echo.Context) (any, Target, error) {
	st, err := s.svc.GetSecretStore(c.Param("id"))
	if err != nil {
		return nil, Target{}, err
	}
	return st, collectionTarget(c), nil
}

func (s *Server) listSecretStores(c echo.Context) error {
	stores, err := s.svc.ListSecretStores()
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(stores))
	for _, st := range stores {
		out = append(out, s.secretStoreBody(st))
	}
	return c.JSON(http.StatusOK, map[string]any{"secret_stores": out})
}

func (s *Server) getGlobalDefaultSecretStore(c echo.Context) error {
	st, err := s.svc.GlobalDefaultSecretStore()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.secretStoreBody(st))
}

func (s *Server) getPreferredSecretStore(c echo.Context) error {
	st, err := s.svc.PreferredSecretStore(c.Request().Context(), callerOf(c).ProjectID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.secretStoreBody(st))
}

func (s *Server) getSecretStore(c echo.Context) error {
	st, err := loaded[keyservice.SecretStoreInfo](c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.secretStoreBody(st))
}

func (s *Server) setPreferredSecretStore(c echo.Context) error {
	st, err := loaded[keyservice.SecretStoreInfo](c)
	if err != nil {
		return err
	}
	if err := s.svc.SetPreferredSecretStore(c.Request().Context(), callerOf(c).ProjectID, st.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) removePreferredSecretStore(c echo.Context) error {
	st, err := loaded[keyservice.SecretStoreInfo](c)
	if err != nil {
		return err
	}
	if err := s.svc.RemovePreferredSecretStore(c.Request().Context(), callerOf(c).ProjectID, st.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
