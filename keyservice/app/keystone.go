package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"opendev.org/x/arca/internal/config"
	"opendev.org/x/arca/internal/keystone"
	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/api"
)

// KeystoneConfig reads [keystone_authtoken] (keystone.LoadConfig: the
// option names and defaults every binary accepts) and refuses it without
// auth_url.
func KeystoneConfig(f *config.File) (keystone.Config, error) {
	cfg := keystone.LoadConfig(f)
	if err := f.Err(); err != nil {
		return cfg, err
	}
	if cfg.AuthURL == "" {
		return cfg, errors.New("[keystone_authtoken] auth_url is not set (auth_strategy = keystone needs it)")
	}
	return cfg, nil
}

// keystoneAuth wires Keystone token validation.
func (a *App) keystoneAuth(opts *api.Options) error {
	kcfg, err := KeystoneConfig(a.Config.Raw)
	if err != nil {
		return err
	}
	validator, err := keystone.NewValidator(kcfg, keystone.WithLogger(a.Log))
	if err != nil {
		return fmt.Errorf("keystone: %w", err)
	}
	opts.Authenticator = &TokenAuthenticator{Validator: validator, challenge: keystone.WWWAuthenticate(kcfg)}
	return nil
}

// TokenAuthenticator validates X-Auth-Token with Keystone. Identity headers
// a client sends itself (X-Project-Id, X-Roles, ...) are never read.
type TokenAuthenticator struct {
	Validator *keystone.Validator
	challenge string
}

// Authenticate validates the request's tokens.
func (k *TokenAuthenticator) Authenticate(ctx context.Context, r *http.Request) (keyservice.Caller, error) {
	token := strings.TrimSpace(r.Header.Get("X-Auth-Token"))
	if token == "" {
		return keyservice.Caller{}, keyservice.Errorf(api.ErrUnauthenticated, "The request you have made requires authentication.")
	}
	tok, err := k.Validator.Validate(ctx, token)
	if err != nil {
		return keyservice.Caller{}, tokenError(err)
	}
	// The token's scope is carried as it is: the API refuses domain- and
	// system-scoped callers on every route that does not name them.
	caller := keyservice.Caller{
		ProjectID: tok.ProjectID, ProjectDomainID: tok.ProjectDomainID,
		DomainID: tok.DomainID, SystemScope: tok.SystemScope,
		UserID: tok.UserID, UserDomainID: tok.UserDomainID,
		Roles: tok.Roles, IsAdminProject: tok.IsAdminProject,
	}
	if st := strings.TrimSpace(r.Header.Get("X-Service-Token")); st != "" {
		_, isService, err := k.Validator.ValidateService(ctx, st)
		if err != nil {
			return keyservice.Caller{}, tokenError(err)
		}
		caller.IsService = isService
	}
	return caller, nil
}

func tokenError(err error) error {
	if errors.Is(err, keystone.ErrUnavailable) {
		return fmt.Errorf("validating token: %w: %w", keyservice.ErrUnavailable, err)
	}
	return keyservice.Errorf(api.ErrUnauthenticated, "The request you have made requires authentication.")
}

// Challenge points clients at Keystone.
func (k *TokenAuthenticator) Challenge() string { return k.challenge }
