package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) getSecretMetadata(c echo.Context) error {
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	md, err := s.svc.SecretMetadata(c.Request().Context(), sec)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"metadata": md})
}

// decodeMetadataBody reads PUT /v1/secrets/{id}/metadata's body.
func decodeMetadataBody(c echo.Context) (map[string]string, error) {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return nil, err
	}
	obj, err := decodeObject(body(c))
	if err != nil {
		return nil, err
	}
	var md map[string]string
	raw, ok := obj["metadata"]
	if !ok || json.Unmarshal(raw, &md) != nil || md == nil {
		return nil, invalid("Invalid metadata: expected {\"metadata\": {\"key\": \"value\", ...}}.")
	}
	return md, nil
}

// decodeMetadatumBody reads the body of POST /v1/secrets/{id}/metadata
// and, with the key in the path (when the route has one), of PUT
// /v1/secrets/{id}/metadata/{key}.
func decodeMetadatumBody(c echo.Context) (key, value string, err error) {
	if err := requireJSON(c.Request().Header.Get(echo.HeaderContentType)); err != nil {
		return "", "", err
	}
	key, value, err = decodeMetadatum(body(c))
	if err != nil {
		return "", "", err
	}
	if c.Param("key") != "" && key != c.Param("key") {
		return "", "", invalid("Invalid metadata: the key in the body must match the key in the URL.")
	}
	return key, value, nil
}

// Request checks that answer 400 before the secret is loaded (route
// validate).
func validMetadataBody(c echo.Context) error { _, err := decodeMetadataBody(c); return err }

func validMetadatumBody(c echo.Context) error { _, _, err := decodeMetadatumBody(c); return err }

func (s *Server) putSecretMetadata(c echo.Context) error {
	md, err := decodeMetadataBody(c)
	if err != nil {
		return err
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	if err := s.svc.ReplaceSecretMetadata(c.Request().Context(), sec, md); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"metadata_ref": s.secretRef(c, sec.ID) + "/metadata"})
}

// decodeMetadatum reads {"key": ..., "value": ...}.
func decodeMetadatum(body []byte) (key, value string, err error) {
	obj, err := decodeObject(body)
	if err != nil {
		return "", "", err
	}
	k, err := optString(obj, "key")
	if err != nil {
		return "", "", err
	}
	v, err := optString(obj, "value")
	if err != nil {
		return "", "", err
	}
	if k == nil || v == nil {
		return "", "", invalid("Invalid metadata: 'key' and 'value' are required strings.")
	}
	return *k, *v, nil
}

func (s *Server) postSecretMetadatum(c echo.Context) error {
	key, value, err := decodeMetadatumBody(c)
	if err != nil {
		return err
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	key, err = s.svc.AddSecretMetadatum(c.Request().Context(), sec, key, value)
	if err != nil {
		return err
	}
	ref := s.secretRef(c, sec.ID) + "/metadata/" + key
	c.Response().Header().Set(echo.HeaderLocation, ref)
	return c.JSON(http.StatusCreated, map[string]string{"metadata_ref": ref})
}

func (s *Server) getSecretMetadatum(c echo.Context) error {
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	md, err := s.svc.SecretMetadata(c.Request().Context(), sec)
	if err != nil {
		return err
	}
	key := c.Param("key")
	value, ok := md[key]
	if !ok {
		return notFoundMetadatum()
	}
	return c.JSON(http.StatusOK, map[string]string{"key": key, "value": value})
}

func (s *Server) putSecretMetadatum(c echo.Context) error {
	key, value, err := decodeMetadatumBody(c)
	if err != nil {
		return err
	}
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	key, err = s.svc.UpdateSecretMetadatum(c.Request().Context(), sec, key, value)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"key": key, "value": value})
}

func (s *Server) deleteSecretMetadatum(c echo.Context) error {
	sec, err := s.loadSecret(c)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteSecretMetadatum(c.Request().Context(), sec, c.Param("key")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
