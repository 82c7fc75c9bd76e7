package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"opendev.org/x/arca/keyservice"
)

// Microversion is an API microversion, major.minor.
type Microversion struct{ Major, Minor int }

func (v Microversion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v >= o.
func (v Microversion) AtLeast(o Microversion) bool {
	return v.Major > o.Major || (v.Major == o.Major && v.Minor >= o.Minor)
}

// The microversions Arca speaks: 1.1 adds secret consumers.
var (
	MinVersion = Microversion{1, 0}
	MaxVersion = Microversion{1, 1}
)

const versionHeader = "OpenStack-API-Version"

// versionHeaderKey is versionHeader as net/http keys its header maps
// (textproto.CanonicalMIMEHeaderKey): looking up or setting the
// mixed-case name canonicalizes it into a new string each time, and every
// request reads the header once and answers it once.
const versionHeaderKey = "Openstack-Api-Version"

// ParseVersionHeader reads "key-manager X.Y" or "key-manager latest" from an
// OpenStack-API-Version header value. Headers naming another service are
// ignored (ok=false, err=nil), as OpenStack services do.
func ParseVersionHeader(value string) (v Microversion, ok bool, err error) {
	if value == "" {
		return v, false, nil // most requests send none: nothing to split
	}
	for _, part := range strings.Split(value, ",") {
		fields := strings.Fields(part)
		if len(fields) == 0 {
			continue
		}
		if !strings.EqualFold(fields[0], "key-manager") {
			continue
		}
		if len(fields) != 2 {
			return v, false, fmt.Errorf("malformed %s header", versionHeader)
		}
		if strings.EqualFold(fields[1], "latest") {
			return MaxVersion, true, nil
		}
		major, minor, found := strings.Cut(fields[1], ".")
		if !found {
			return v, false, fmt.Errorf("malformed microversion %q", fields[1])
		}
		maj, err1 := strconv.Atoi(major)
		mnr, err2 := strconv.Atoi(minor)
		if err1 != nil || err2 != nil || maj < 0 || mnr < 0 || len(major) > 3 || len(minor) > 3 {
			return v, false, fmt.Errorf("malformed microversion %q", fields[1])
		}
		return Microversion{maj, mnr}, true, nil
	}
	return v, false, nil
}

// negotiateVersion answers the request's OpenStack-API-Version header
// (every answer names the version it speaks) and records the version for
// the handler (microversion).
func negotiateVersion(c echo.Context, st *reqState) error {
	h := c.Response().Header()
	h.Add("Vary", versionHeader)
	v := MinVersion
	requested, ok, err := ParseVersionHeader(c.Request().Header.Get(versionHeaderKey))
	if err != nil {
		h.Set(versionHeaderKey, versionAnswer(MinVersion))
		return keyservice.Errorf(keyservice.ErrInvalid, "Invalid OpenStack-API-Version header: %s.", err)
	}
	if ok {
		if !requested.AtLeast(MinVersion) || !MaxVersion.AtLeast(requested) {
			h.Set(versionHeaderKey, versionAnswer(MinVersion))
			return keyservice.Errorf(keyservice.ErrNotAcceptable,
				"Version %s is not supported by the API. Minimum is %s and maximum is %s.", requested, MinVersion, MaxVersion)
		}
		v = requested
	}
	h.Set(versionHeaderKey, versionAnswer(v))
	st.version, st.hasVersion = v, true
	return nil
}

// The OpenStack-API-Version answers of the versions Arca speaks, built
// once: every response carries one.
var (
	minVersionAnswer = "key-manager " + MinVersion.String()
	maxVersionAnswer = "key-manager " + MaxVersion.String()
)

// versionAnswer is the OpenStack-API-Version value that names v.
func versionAnswer(v Microversion) string {
	switch v {
	case MinVersion:
		return minVersionAnswer
	case MaxVersion:
		return maxVersionAnswer
	}
	return "key-manager " + v.String()
}

func microversion(c echo.Context) Microversion {
	if st := stateOf(c); st.hasVersion {
		return st.version
	}
	return MinVersion
}

type link struct {
	Rel  string `json:"rel"`
	Type string `json:"type,omitempty"`
	Href string `json:"href"`
}

type mediaType struct {
	Base string `json:"base"`
	Type string `json:"type"`
}

// versionEntry renders the v1 entry in the shape the negotiated
// microversion expects: 1.0 clients know "stable" and media-types, 1.1
// clients read CURRENT with min/max versions.
func (s *Server) versionEntry(c echo.Context) map[string]any {
	links := []link{
		{Rel: "self", Href: s.baseURL(c) + "/v1/"},
		{Rel: "describedby", Type: "text/html", Href: "https://docs.openstack.org/"},
	}
	if microversion(c).AtLeast(Microversion{1, 1}) {
		return map[string]any{
			"id": "v1", "status": "CURRENT",
			"min_version": MinVersion.String(), "max_version": MaxVersion.String(),
			"links": links,
		}
	}
	return map[string]any{
		"id": "v1", "status": "stable", "links": links,
		"media-types": []mediaType{{Base: "application/json", Type: "application/vnd.openstack.key-manager-v1+json"}},
	}
}

func (s *Server) getRoot(c echo.Context) error {
	if _, ok := c.QueryParams()["build"]; ok {
		return c.JSON(http.StatusOK, map[string]string{"build": s.build})
	}
	entry := s.versionEntry(c)
	if microversion(c).AtLeast(Microversion{1, 1}) {
		return c.JSON(http.StatusMultipleChoices, map[string]any{"versions": []any{entry}})
	}
	return c.JSON(http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{entry}}})
}

func (s *Server) getV1(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"version": s.versionEntry(c)})
}

// healthcheck answers as oslo.middleware's healthcheck does: GET 200 "OK",
// HEAD 204, 503 when the check fails.
func (s *Server) healthcheck(c echo.Context) error {
	if s.healthHandler != nil { // oslo-style handler with disable file (observability.go)
		return echo.WrapHandler(s.healthHandler)(c)
	}
	if s.health != nil {
		if err := s.health(c.Request()); err != nil {
			s.log.Warn().Err(err).Msg("health check failed")
			if c.Request().Method == http.MethodHead {
				return c.NoContent(http.StatusServiceUnavailable)
			}
			return c.String(http.StatusServiceUnavailable, "FAIL")
		}
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(http.StatusNoContent)
	}
	return c.String(http.StatusOK, "OK")
}
