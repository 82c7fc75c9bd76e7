package swiftfilter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"opendev.org/x/arca/internal/keyclient"
)

// Decision is the filter's answer for one object write, the same in both
// shapes (the reverse proxy's attachKey and the pipeline's decision socket):
// either a refusal (Status, Message) or the key id to attach (KeyID, empty
// for none: the write goes on and Swift, then the object server, decide).
type Decision struct {
	// Account is the account written to and Project its project ("" when
	// the write gets no key id).
	Account, Project string
	KeyID            string
	// Status is 0 to go on, else the status of a refusal with Message.
	Status  int
	Message string
	// Outcome is for the access line.
	Outcome string
	// ReuseUntil, when set, is how long the same KeyID may be given to
	// other writes to Account by tokens of Project without asking again:
	// the end of the active key's cache entry, which the key service's
	// destroy guard bounds. Only the pipeline shape's middleware keeps
	// decisions (the reverse proxy asks its own cache each time).
	ReuseUntil time.Time
}

// WriteRequest is what the decision needs of a request: its method, its
// path as Swift decodes it (URL.Path, PATH_INFO), its Destination-Account
// values, and the project of the validated user token (HasUser false when
// the request carries none).
type WriteRequest struct {
	Method             string
	Path               string
	DestinationAccount []string
	HasUser            bool
	TokenProject       string
}

// DecideWrite decides on one request of the pipeline shape, whose token
// Swift's authtoken has already validated: a request that writes no
// object data (or whose path Swift will refuse) gets an empty decision.
// Swift's subrequests into its reserved namespace (object versioning's
// versions) are decided as any write to their account: they hold the
// account's object data.
func (f *Filter) DecideWrite(ctx context.Context, w WriteRequest) Decision {
	target, err := ParseReservedPath(w.Path)
	if err != nil {
		return Decision{Outcome: "path Swift refuses: no key id"}
	}
	account, needs, err := writeAccount(w.Method, target, w.DestinationAccount)
	if err != nil {
		return Decision{Status: http.StatusBadRequest, Message: "Invalid Destination-Account.", Outcome: err.Error()}
	}
	if !needs {
		return Decision{Outcome: "not an object write"}
	}
	return f.keyFor(ctx, account, w.HasUser, w.TokenProject)
}

// writeAccount says whether a request writes object data, and to which
// account: object PUT (X-Copy-From included) to the path's account, object
// COPY to Destination-Account (dest, the header's values) when given, else
// the path's.
func writeAccount(method string, t Target, dest []string) (account string, needs bool, err error) {
	if !t.IsObject() {
		return "", false, nil
	}
	switch method {
	case http.MethodPut:
		return t.Account, true, nil
	case "COPY":
		if dest == nil {
			return t.Account, true, nil
		}
		if len(dest) != 1 {
			return "", false, fmt.Errorf("%w: several Destination-Account headers", ErrBadRequest)
		}
		a, err := DecodeAccountHeader(dest[0])
		if err != nil {
			return "", false, err
		}
		return a, true, nil
	}
	return "", false, nil
}

// keyFor decides the key id of a write to account by a caller whose
// validated user token is scoped to tokenProject (hasUser false: no user
// token). ctx is the request's: its end means the client went away.
//
// The filter only learns the id of a key that exists: the key service never
// lets its role create one (project_key:create), and answers 404 for a
// project without an active key; such a write goes on without a key id,
// and the object server, which creates the key of an account Swift let it
// write to, makes the project's first. The id is asked for only for a
// caller Keystone vouched for as a member of the owning project. Every other
// write (anonymous: TempURL, FormPost, public-write containers;
// a domain-scoped token; another project's token writing through an ACL or
// as a reseller admin) goes on without a key id: Swift decides whether it
// is allowed at all, and the object server resolves the key of an account
// that Swift let it write to. A request Swift will refuse thus never makes
// the key service create anything.
func (f *Filter) keyFor(ctx context.Context, account string, hasUser bool, tokenProject string) Decision {
	d := Decision{Account: account}
	project, ok := f.prefixes.ProjectOf(account)
	switch {
	case !ok:
		d.Outcome = "account matches no reseller prefix: no key id"
		return d
	case !validProjectID(project):
		d.Outcome = "account names no valid project"
		d.Status, d.Message = http.StatusBadRequest, "The account does not name a valid project."
		return d
	case !hasUser:
		d.Outcome = "no user token: no key id, Swift authorizes"
		return d
	case tokenProject == "":
		d.Outcome = "token not scoped to a project: no key id, Swift authorizes"
		return d
	case tokenProject != project:
		// Project ids are not secrets: a plain comparison is fine.
		d.Outcome = "token's project does not own the account: no key id, Swift authorizes"
		return d
	}
	d.Project = project
	kctx, cancel := context.WithTimeout(ctx, f.cfg.KeyTimeout)
	defer cancel()
	key, until, err := f.activeKey(kctx, project)
	if errors.Is(err, keyclient.ErrNotFound) && ctx.Err() == nil {
		d.Outcome = "project has no active key yet: no key id, the object server makes the first"
		return d
	}
	if err != nil {
		return f.keyRefusal(ctx, d, err)
	}
	if !validProjectID(key.ID) { // defence: the id goes into a header
		d.Outcome = "key service returned an unusable key id"
		d.Status, d.Message = http.StatusServiceUnavailable, "The key service is unavailable; retry later."
		return d
	}
	d.KeyID, d.ReuseUntil = key.ID, until
	return d
}

// activeKey is the project's active key and, when the resolver can say,
// until when it may be kept (zero: do not keep it).
func (f *Filter) activeKey(ctx context.Context, project string) (keyclient.Key, time.Time, error) {
	if b, ok := f.keys.(keyclient.ActiveBounder); ok {
		return b.ActiveKeyUntil(ctx, project)
	}
	k, err := f.keys.ActiveKey(ctx, project)
	return k, time.Time{}, err
}

// keyRefusal turns the key service's error for d's project into the refusal
// of the write.
func (f *Filter) keyRefusal(ctx context.Context, d Decision, err error) Decision {
	f.countRefusal(ctx, d.Project, err)
	d.Outcome = "no key: " + err.Error()
	unavailable := "The key service is unavailable; retry later."
	switch {
	case errors.Is(err, keyclient.ErrDestroyed):
		f.log.Warn().Err(err).Str("project_id", d.Project).Msg("no active key for the account's project")
		d.Status, d.Message = http.StatusForbidden, "No encryption key is available for this account."
	case ctx.Err() != nil:
		d.Status, d.Message = statusClientClosed, "Client disconnected."
	case errors.Is(err, keyclient.ErrDenied):
		// A deployment fault, not the client's: the filter's service
		// user lacks the role the key service's policy asks for
		// active key ids of any project (key-manager:swift-filter).
		f.log.Error().Err(err).Str("project_id", d.Project).
			Msg("the key service denied the filter's service user an active key id (role key-manager:swift-filter?): write refused")
		d.Status, d.Message = http.StatusServiceUnavailable, unavailable
	default:
		f.log.Error().Err(err).Str("project_id", d.Project).Msg("key service unavailable: write refused")
		d.Status, d.Message = http.StatusServiceUnavailable, unavailable
	}
	return d
}
