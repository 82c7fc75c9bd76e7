package keyclient

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keystone"
)

// Defaults of Options.
const (
	DefaultActiveTTL = 60 * time.Second
	// DefaultMaterialTTL bounds how long an object server keeps reading
	// objects after their key is destroyed (docs/project-keys.md).
	DefaultMaterialTTL = 60 * time.Second
	DefaultErrorTTL    = 2 * time.Second
	// MinActiveRefresh is how often, at most, RefreshActiveKey asks the
	// key service again for one project: a filter with a stale cache (up to
	// its active_key_cache_ttl after a rotation) must not turn every write
	// into a key-service request.
	MinActiveRefresh = time.Second
	DefaultCacheSize = 10000
	DefaultTimeout   = 10 * time.Second
	// ServiceType is the catalog type arca-api is registered under.
	ServiceType = "key-manager"
)

// Credentials are the service user's (keystone.Credentials: one reader,
// one builder of gophercloud's options for every service user of Arca).
// The key service's service role is project-scoped, so a password needs a
// project.
type Credentials = keystone.Credentials

// NoAuthRole is the role a NoAuth client claims: the object servers'
// (key material and active key ids of any project, under arca-api's
// policy, which a no-auth arca-api applies as a Keystone one does).
const NoAuthRole = "key-manager:object-server"

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// Credentials of the service user (roles: service). Ignored with NoAuth.
	Credentials Credentials
	// Endpoint is arca-api's base URL (http://keys:9311, with or without
	// /v1). Empty: the key-manager endpoint of the service user's catalog.
	Endpoint string
	// Region and Interface (public, internal, admin) select the catalog
	// endpoint; Interface defaults to public.
	Region    string
	Interface string
	// NoAuth talks to an arca-api running with auth_strategy = noauth
	// (development only): no Keystone, the project is sent as X-Project-Id
	// with X-Roles: NoAuthRole. Endpoint is required.
	NoAuth bool

	// ActiveTTL is how long a project's active key id is cached, counted
	// from when the request was sent: a rotation reaches writers after at
	// most this long. arca-api's [project_keys] active_key_cache_ttl should
	// exceed it by a margin (keyservice.ActiveKeyCacheMargin); the client
	// also never holds an id longer than the value arca-api states with it
	// (ActiveKeyCacheTTLHeader). MaterialTTL is how long
	// key bytes are cached: after a key is destroyed, objects under it stay
	// readable for at most this long, and after the key service becomes
	// unreachable, objects stay readable for this long. ErrorTTL is how
	// long a failure (not found, destroyed, denied, unavailable) is
	// remembered before asking again; negative: never. Zero takes the
	// defaults.
	ActiveTTL   time.Duration
	MaterialTTL time.Duration
	ErrorTTL    time.Duration
	// CacheSize bounds each cache (active ids, material, errors).
	CacheSize int
	// Timeout bounds one resolution (authentication included).
	Timeout time.Duration
	// HTTPClient is used for Keystone and the key service; nil: a client
	// with pooled keep-alive connections.
	HTTPClient *http.Client
	Logger     zerolog.Logger
	// Observer, when set, is told of every request sent to the key service
	// (metrics); see Observer.
	Observer Observer
}

func (o Options) withDefaults() (Options, error) {
	if o.ActiveTTL <= 0 {
		o.ActiveTTL = DefaultActiveTTL
	}
	if o.MaterialTTL <= 0 {
		o.MaterialTTL = DefaultMaterialTTL
	}
	if o.ErrorTTL == 0 {
		o.ErrorTTL = DefaultErrorTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Interface == "" {
		o.Interface = string(gophercloud.AvailabilityPublic)
	}
	switch gophercloud.Availability(o.Interface) {
	case gophercloud.AvailabilityPublic, gophercloud.AvailabilityInternal, gophercloud.AvailabilityAdmin:
	default:
		return o, errors.New("keyclient: interface must be public, internal or admin")
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		o.HTTPClient = &http.Client{Transport: t}
	}
	// Never follow a redirect, whoever built the client: the service
	// token would go along (net/http drops only Authorization and cookies
	// when the host changes) and the answer from wherever it pointed would
	// be taken for the key service's. A 3xx is an unexpected answer, and
	// fails closed (ErrUnavailable).
	hc := *o.HTTPClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.HTTPClient = &hc
	if o.NoAuth {
		if o.Endpoint == "" {
			return o, errors.New("keyclient: no-auth mode needs an explicit endpoint")
		}
		return o, nil
	}
	if o.Credentials.AuthURL == "" {
		return o, errors.New("keyclient: the service user's auth_url is not set")
	}
	return o, nil
}

// authOptions are gophercloud's options for the service user: a password
// login must name a project, since the service role is project-scoped.
func authOptions(c Credentials) (gophercloud.AuthOptions, error) {
	ao, err := c.AuthOptions()
	if err != nil {
		return ao, fmt.Errorf("keyclient: %w", err)
	}
	if ao.ApplicationCredentialID == "" && ao.ApplicationCredentialName == "" && ao.Scope == nil {
		return ao, errors.New("keyclient: set project_name or project_id: the service role is project-scoped")
	}
	return ao, nil
}
