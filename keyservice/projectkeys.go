package keyservice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"opendev.org/x/arca/keyservice/envelope"
	"opendev.org/x/arca/objcrypt"
)

// Project key statuses. A project has at most one ACTIVE key; a rotation
// makes the previous one DEACTIVATED (still readable, for decryption);
// destroying a key wipes its material and leaves the row DESTROYED, so
// resolvers learn that the data is gone (410) rather than unknown (404).
const (
	ProjectKeyActive      = "ACTIVE"
	ProjectKeyDeactivated = "DEACTIVATED"
	ProjectKeyDestroyed   = "DESTROYED"
)

// Project key algorithms: the crypto_protocol values, and their key sizes.
const (
	ProtocolAES128CBC = "aes_128_cbc"
	ProtocolAES256CBC = "aes_256_cbc"
)

// ProjectKeyBits returns the key size of a crypto_protocol, 0 if unknown.
func ProjectKeyBits(protocol string) int {
	switch protocol {
	case ProtocolAES128CBC:
		return 128
	case ProtocolAES256CBC:
		return 256
	}
	return 0
}

// ProjectKey is a project data key's row. Material is the key sealed by
// the project KEK with envelope.ProjectKeyAAD(ProjectID, ID); nil once
// destroyed.
type ProjectKey struct {
	ID        string
	ProjectID string
	// Algorithm is the crypto_protocol the key was made for.
	Algorithm string
	BitLength int
	Status    string
	// CreatorID is the user (or service user) whose request made the key.
	CreatorID   string
	Material    []byte
	Created     time.Time
	Deactivated *time.Time
	Destroyed   *time.Time
}

// Audit actions and outcomes of KeyAuditRecord.
const (
	AuditCreate  = "create"
	AuditRotate  = "rotate"
	AuditDestroy = "destroy"
	AuditPayload = "payload"
	// AuditListingKey: a key's listing key (objcrypt's, for the filter)
	// was read.
	AuditListingKey = "get_listing_key"
	// Reads, audited when they address another project (?project_id=)
	// and whenever they are refused.
	AuditGetActive = "get_active"
	AuditList      = "list"
	AuditGet       = "get"

	OutcomeSuccess  = "success"
	OutcomeDenied   = "denied"
	OutcomeNotFound = "not_found"
	OutcomeGone     = "gone"
	OutcomeConflict = "conflict"
	OutcomeInvalid  = "invalid"
	OutcomeError    = "error"
)

// KeyAuditRecord is one audited operation on a project key: who, what,
// which key of which project, when, and how it ended. Never material.
type KeyAuditRecord struct {
	// ID is assigned by the store (increasing); 0 before it is written.
	ID        int64
	Time      time.Time
	RequestID string
	Action    string
	Outcome   string
	// ProjectID is the project whose key is addressed; KeyID the key (empty
	// when the operation failed before one was chosen).
	ProjectID string
	KeyID     string
	// UserID and UserProjectID are the caller's; Service whether the caller
	// acted with a service role. Roles is the caller's role list.
	UserID        string
	UserProjectID string
	Service       bool
	Roles         string
	// Detail is a short free-form note ("previous <id>", "forced").
	Detail string
	// EventID identifies the event, set when it happens: a store keeps
	// one record per EventID, so a batch written again after a commit of
	// unknown outcome is not recorded twice. Empty: no such guarantee.
	EventID string
}

// KeyAuditFilter selects audit records: a project's (required), optionally
// one key's, with ID > AfterID, oldest first, at most Limit (0: 1000).
type KeyAuditFilter struct {
	ProjectID string
	KeyID     string
	AfterID   int64
	Limit     int
}

// ValidProjectID reports whether id can name a Keystone project: 1-64
// letters, digits, '-' or '_' (Keystone ids are 32 hex digits; no-auth
// development uses names like "demo").
func ValidProjectID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

func projectKeyNotFound() error { return Errorf(ErrNotFound, "Project key not found.") }

// projectKeyProtocol is the crypto_protocol new keys are made for.
func (s *Service) projectKeyProtocol() string {
	if s.protocol == "" {
		return ProtocolAES128CBC
	}
	return s.protocol
}

// newProjectKey generates a key from the service's randomness source and
// seals it with the project's KEK, bound to the project and key id.
func (s *Service) newProjectKey(ctx context.Context, caller Caller, projectID string) (*ProjectKey, error) {
	protocol := s.projectKeyProtocol()
	bits := ProjectKeyBits(protocol)
	if bits == 0 {
		return nil, fmt.Errorf("crypto_protocol %q: unknown", protocol)
	}
	raw, err := s.RandomBytes(bits / 8)
	if err != nil {
		return nil, err
	}
	k := &ProjectKey{
		ID: NewID(), ProjectID: projectID, Algorithm: protocol, BitLength: bits,
		Status: ProjectKeyActive, CreatorID: caller.UserID, Created: s.Now(),
	}
	k.Material, err = s.SealForProject(ctx, projectID, raw, envelope.ProjectKeyAAD(projectID, k.ID))
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("sealing project key: %w", err)
	}
	return k, nil
}

// maxKeyRaces bounds the retries of get-or-create and rotate when other
// requests keep winning the unique key: a handful suffices in practice.
const maxKeyRaces = 16

// ActiveProjectKey returns the project's active key, creating the first
// one on demand. Concurrent first calls in any number of processes end
// with one key: each inserts under the project's unique active slot, the
// losers read the winner's.
func (s *Service) ActiveProjectKey(ctx context.Context, caller Caller, projectID string) (*ProjectKey, error) {
	return s.ActiveProjectKeyWith(ctx, caller, projectID, nil)
}

// ActiveProjectKeyWith is ActiveProjectKey where making the project's
// first key is a decision of its own: mayCreate (nil: allowed) is asked
// only when the project has no active key. Its refusal (ErrForbidden) is
// audited (create, denied) and answered ErrNotFound: the project has no
// active key yet, and this caller does not make one. Any other error of
// mayCreate fails the call.
func (s *Service) ActiveProjectKeyWith(ctx context.Context, caller Caller, projectID string, mayCreate func(context.Context) error) (*ProjectKey, error) {
	if !ValidProjectID(projectID) {
		return nil, Errorf(ErrInvalid, "Invalid project id.")
	}
	store := s.store
	for range maxKeyRaces {
		k, err := store.GetActiveProjectKey(ctx, projectID)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("loading the active project key: %w", err)
		}
		if mayCreate != nil {
			if err := mayCreate(ctx); err != nil {
				_ = s.audit(ctx, caller, AuditCreate, projectID, "", err, "no active key; caller may not create the first") // logged by audit
				if !errors.Is(err, ErrForbidden) {
					return nil, fmt.Errorf("deciding whether to create the project key: %w", err)
				}
				return nil, Errorf(ErrNotFound, "The project has no active key yet.")
			}
			mayCreate = nil // decided: after a lost race the winner's key is read
		}
		k, err = s.newProjectKey(ctx, caller, projectID)
		if err != nil {
			return nil, err
		}
		err = store.CreateProjectKey(ctx, k)
		if errors.Is(err, ErrConflict) {
			continue // another request created it: read theirs
		}
		if err != nil {
			_ = s.audit(ctx, caller, AuditCreate, projectID, k.ID, err, "") // logged by audit; the store error is what matters
			return nil, fmt.Errorf("storing the project key: %w", err)
		}
		// The key exists now; a record that could not be queued is logged
		// by audit and must not turn a created key into a failed request.
		_ = s.audit(ctx, caller, AuditCreate, projectID, k.ID, nil, "first key")
		return k, nil
	}
	return nil, fmt.Errorf("project %s: %w: the active key kept changing", projectID, ErrConflict)
}

// RotateProjectKey makes a new active key for the project; the previous one
// becomes DEACTIVATED and stays readable. Concurrent rotations each take
// effect in turn (none is lost, the last one wins).
func (s *Service) RotateProjectKey(ctx context.Context, caller Caller, projectID string) (*ProjectKey, error) {
	if !ValidProjectID(projectID) {
		return nil, Errorf(ErrInvalid, "Invalid project id.")
	}
	store := s.store
	for range maxKeyRaces {
		next, err := s.newProjectKey(ctx, caller, projectID)
		if err != nil {
			return nil, err
		}
		cur, err := store.GetActiveProjectKey(ctx, projectID)
		switch {
		case errors.Is(err, ErrNotFound):
			err = store.CreateProjectKey(ctx, next)
			if err == nil {
				_ = s.audit(ctx, caller, AuditRotate, projectID, next.ID, nil, "no previous key") // logged by audit
				return next, nil
			}
		case err != nil:
			return nil, fmt.Errorf("loading the active project key: %w", err)
		default:
			err = store.RotateProjectKey(ctx, cur.ID, next)
			if err == nil {
				_ = s.audit(ctx, caller, AuditRotate, projectID, next.ID, nil, "previous "+cur.ID) // logged by audit
				return next, nil
			}
		}
		if !errors.Is(err, ErrConflict) {
			_ = s.audit(ctx, caller, AuditRotate, projectID, "", err, "") // logged by audit
			return nil, fmt.Errorf("rotating the project key: %w", err)
		}
	}
	_ = s.audit(ctx, caller, AuditRotate, projectID, "", ErrConflict, "too many concurrent changes") // logged by audit
	return nil, Errorf(ErrConflict, "The project's key is being changed concurrently; retry.")
}

// ListProjectKeys returns a page of the project's keys, newest first.
func (s *Service) ListProjectKeys(ctx context.Context, projectID string, limit, offset int) ([]*ProjectKey, int, error) {
	if !ValidProjectID(projectID) {
		return nil, 0, Errorf(ErrInvalid, "Invalid project id.")
	}
	store := s.store
	list, total, err := store.ListProjectKeys(ctx, projectID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing project keys: %w", err)
	}
	return list, total, nil
}

// LoadProjectKey returns key keyID of project projectID. A key of another
// project is reported exactly like a key that does not exist.
func (s *Service) LoadProjectKey(ctx context.Context, projectID, keyID string) (*ProjectKey, error) {
	if !validID(keyID) || !ValidProjectID(projectID) {
		return nil, projectKeyNotFound()
	}
	store := s.store
	k, err := store.GetProjectKey(ctx, keyID)
	if errors.Is(err, ErrNotFound) {
		return nil, projectKeyNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("loading project key: %w", err)
	}
	if k.ProjectID != projectID {
		return nil, projectKeyNotFound()
	}
	return k, nil
}

// LoadProjectKeyByID returns a key by id whatever its project; the caller
// must check that the requester may see that project before revealing
// anything about it.
func (s *Service) LoadProjectKeyByID(ctx context.Context, keyID string) (*ProjectKey, error) {
	if !validID(keyID) {
		return nil, projectKeyNotFound()
	}
	store := s.store
	k, err := store.GetProjectKey(ctx, keyID)
	if errors.Is(err, ErrNotFound) {
		return nil, projectKeyNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("loading project key: %w", err)
	}
	return k, nil
}

// ProjectKeyMaterial opens a key's material for caller, auditing the read
// (whatever its outcome). It fails closed: a read that cannot be audited
// is refused.
func (s *Service) ProjectKeyMaterial(ctx context.Context, caller Caller, k *ProjectKey) ([]byte, error) {
	material, err := s.openProjectKey(ctx, k)
	if aerr := s.audit(ctx, caller, AuditPayload, k.ProjectID, k.ID, err, ""); aerr != nil && err == nil {
		clear(material)
		return nil, aerr
	}
	return material, err
}

// ProjectKeyListingKey returns the listing key derived from a key
// (objcrypt.DeriveListingKey: it opens listing ETags and nothing else),
// auditing the read as ProjectKeyMaterial does: whatever its outcome, and
// refused when it cannot be audited. The project key itself never leaves.
func (s *Service) ProjectKeyListingKey(ctx context.Context, caller Caller, k *ProjectKey) ([]byte, error) {
	var listing []byte
	material, err := s.openProjectKey(ctx, k)
	if err == nil {
		listing, err = objcrypt.DeriveListingKey(objcrypt.ProjectKey{ID: k.ID, Key: material})
		clear(material)
		if err != nil {
			err = fmt.Errorf("project key %s: deriving the listing key: %w", k.ID, err)
		}
	}
	if aerr := s.audit(ctx, caller, AuditListingKey, k.ProjectID, k.ID, err, ""); aerr != nil && err == nil {
		clear(listing)
		return nil, aerr
	}
	return listing, err
}

func (s *Service) openProjectKey(ctx context.Context, k *ProjectKey) ([]byte, error) {
	if k.Status == ProjectKeyDestroyed || k.Material == nil {
		return nil, Errorf(ErrGone, "The project key was destroyed.")
	}
	raw, err := s.OpenForProject(ctx, k.ProjectID, k.Material, envelope.ProjectKeyAAD(k.ProjectID, k.ID))
	if err != nil {
		return nil, fmt.Errorf("project key %s: opening material: %w", k.ID, err)
	}
	if len(raw)*8 != k.BitLength {
		clear(raw)
		return nil, fmt.Errorf("project key %s: material is %d bytes, want %d bits", k.ID, len(raw), k.BitLength)
	}
	return raw, nil
}

// ActiveKeyCacheMargin is what arca-api's destroy guard should exceed the
// object servers' active-id cache by: the clocks of the arca-api hosts
// (one records a deactivation, another may judge the destroy) may differ
// by a few seconds, and an object server commits an upload a moment after
// its last check of the active key.
const ActiveKeyCacheMargin = 10 * time.Second

// DefaultActiveKeyCacheTTL is the default of Options.ActiveKeyCacheTTL:
// the object servers' default active-key cache lifetime
// (keyclient.DefaultActiveTTL, 60 s, checked by a test) plus
// ActiveKeyCacheMargin.
const DefaultActiveKeyCacheTTL = 60*time.Second + ActiveKeyCacheMargin

// ActiveKeyCacheTTLHeader is sent with every answer that names a project's
// active key (get active, rotate): arca-api's destroy guard, in seconds.
// The key client never caches an active id longer than that, counted from
// when it sent the request, so that no id it still holds as active can
// have been destroyed without force, however slow the answer was and
// whatever active_key_cache_ttl the client was configured with.
const ActiveKeyCacheTTLHeader = "X-Arca-Active-Key-Cache-Ttl"

// ActiveKeyCacheTTL is the destroy guard (Options.ActiveKeyCacheTTL).
func (s *Service) ActiveKeyCacheTTL() time.Duration { return s.destroyWait }

// ActiveKeyCacheTTLValue renders d for ActiveKeyCacheTTLHeader: seconds,
// with a fraction when d is not whole seconds, rounded down (a client may
// cache for less than the guard, never for more).
func ActiveKeyCacheTTLValue(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Truncate(time.Millisecond))/float64(time.Second), 'f', -1, 64)
}

// DestroyProjectKey wipes a key's material for good (crypto-shredding
// every object written under it). Two refusals (409) protect writes that
// were, or are being, acknowledged:
//   - the ACTIVE key, force or not: new writes use it; rotate first;
//   - a key deactivated less than ActiveKeyCacheTTL ago, unless force:
//     object servers that cached it as the active key may still encrypt
//     new objects under it until their cache expires. With force those
//     objects, acknowledged with 201, become unreadable.
//
// The store applies both conditions in the destroying statement itself, so
// a rotation racing with the destroy cannot slip a fresh key through.
func (s *Service) DestroyProjectKey(ctx context.Context, caller Caller, k *ProjectKey, force bool) error {
	now := s.Now()
	err := s.store.DestroyProjectKey(ctx, k.ID, force, now.Add(-s.destroyWait), now)
	detail := ""
	if force {
		detail = "forced"
		if k.Deactivated != nil && now.Sub(*k.Deactivated) < s.destroyWait {
			detail = fmt.Sprintf("forced %s after deactivation, within active_key_cache_ttl %s",
				now.Sub(*k.Deactivated).Round(time.Millisecond), s.destroyWait)
		}
	}
	switch {
	case errors.Is(err, ErrConflict):
		err = s.destroyConflict(ctx, k.ID, now)
	case errors.Is(err, ErrGone):
		err = Errorf(ErrGone, "The project key was destroyed already.")
	case errors.Is(err, ErrNotFound):
		err = projectKeyNotFound()
	case err != nil:
		err = fmt.Errorf("destroying project key: %w", err)
	}
	if aerr := s.audit(ctx, caller, AuditDestroy, k.ProjectID, k.ID, err, detail); aerr != nil && err == nil {
		// Destroyed but not audited: say so loudly; the key is gone anyway.
		s.log.Error().Err(aerr).Str("project_id", k.ProjectID).Str("key_id", k.ID).Msg("project key destroyed but its audit record was not queued")
	}
	return err
}

// destroyConflict explains a refused destroy from the key's current row
// (the one the store refused, not the caller's possibly older copy).
func (s *Service) destroyConflict(ctx context.Context, keyID string, now time.Time) error {
	k, err := s.store.GetProjectKey(ctx, keyID)
	if err != nil {
		return fmt.Errorf("destroying project key: refused, then reading it: %w", err)
	}
	if k.Status == ProjectKeyActive {
		return Errorf(ErrConflict, "The project key is the project's active key and cannot be destroyed: rotate first, then destroy it once every object server has stopped using it (active_key_cache_ttl).")
	}
	since := "at an unknown time"
	wait := s.destroyWait
	if k.Deactivated != nil {
		age := max(now.Sub(*k.Deactivated), 0)
		since = age.Round(time.Second).String() + " ago"
		wait = s.destroyWait - age
	}
	// Rounded up, so that a retry after the time said succeeds.
	wait = max((wait + time.Second - 1).Truncate(time.Second), time.Second)
	return Errorf(ErrConflict, "The project key was deactivated %s, less than active_key_cache_ttl (%s) ago: "+
		"object servers may still be encrypting new writes under it. Retry in %s, or destroy it now with force=true: "+
		"objects written under it in that window, already acknowledged, would become unreadable for good.",
		since, s.destroyWait, wait)
}

// AuditProjectKeyAccess records an operation refused before it reached the
// service (denied by policy, unknown key), so that every access is in the
// audit trail.
func (s *Service) AuditProjectKeyAccess(ctx context.Context, caller Caller, action, projectID, keyID string, cause error, detail string) {
	_ = s.audit(ctx, caller, action, projectID, keyID, cause, detail)
}

// ProjectKeyAudit returns audit records (oldest first), waiting for the
// records queued so far in this process to be written.
func (s *Service) ProjectKeyAudit(ctx context.Context, f KeyAuditFilter) ([]KeyAuditRecord, error) {
	store := s.store
	if err := s.FlushAudit(ctx); err != nil {
		return nil, err
	}
	return store.ListKeyAudit(ctx, f)
}

// OutcomeOf classifies an operation's error for the audit trail.
func OutcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeSuccess
	case errors.Is(err, ErrForbidden):
		return OutcomeDenied
	case errors.Is(err, ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, ErrGone):
		return OutcomeGone
	case errors.Is(err, ErrConflict):
		return OutcomeConflict
	case errors.Is(err, ErrInvalid):
		return OutcomeInvalid
	}
	return OutcomeError
}

// isServiceCaller says whether the audit names the caller a service: an
// X-Service-Token, the service role, or one of the roles Arca's own daemons
// hold (arca-object-server's and arca-swift-filter's; the object servers'
// user has no other role).
func isServiceCaller(c Caller) bool {
	if c.IsService {
		return true
	}
	for _, r := range c.Roles {
		switch strings.ToLower(r) {
		case "service", "key-manager:object-server", "key-manager:swift-filter":
			return true
		}
	}
	return false
}

func (s *Service) audit(ctx context.Context, caller Caller, action, projectID, keyID string, cause error, detail string) error {
	var roles bytes.Buffer
	for i, r := range caller.Roles {
		if i > 0 {
			roles.WriteByte(',')
		}
		roles.WriteString(r)
	}
	rec := KeyAuditRecord{
		Time: s.Now(), RequestID: caller.RequestID, Action: action, Outcome: OutcomeOf(cause),
		ProjectID: projectID, KeyID: keyID, UserID: caller.UserID, UserProjectID: caller.ProjectID,
		Service: isServiceCaller(caller), Roles: truncate(roles.String(), 255), Detail: truncate(detail, 255),
		EventID: newEventID(),
	}
	return s.auditor().record(ctx, rec)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
