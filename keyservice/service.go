package keyservice

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"

	"opendev.org/x/arca/keyservice/envelope"
)

// Caller is who a request acts for, as established by the authentication
// layer (a validated Keystone token, or the no-auth development headers).
type Caller struct {
	// Exactly one scope is set: ProjectID (project-scoped token), DomainID
	// (domain-scoped) or SystemScope ("all", system-scoped). Every
	// project-owned resource is addressed through ProjectID; the API lets
	// other scopes reach only the routes whose rules name them.
	ProjectID       string
	ProjectDomainID string
	DomainID        string
	SystemScope     string
	UserID          string
	UserDomainID    string
	Roles           []string
	// IsService is set when the request carries a valid service token with
	// a service role (X-Service-Token), as keystonemiddleware reports it.
	IsService      bool
	IsAdminProject bool
	RequestID      string
}

// SystemScopeAll is Caller.SystemScope for a token scoped to the whole system.
const SystemScopeAll = "all"

// ProjectScoped reports whether the caller acts for a project.
func (c Caller) ProjectScoped() bool { return c.ProjectID != "" }

// Options tune a Service. Zero values take the defaults.
type Options struct {
	// Rand is the source of keys and nonces; crypto/rand by default.
	Rand io.Reader
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// KEKCacheSize bounds how many opened project KEKs stay in memory.
	KEKCacheSize int
	// KEKCacheTTL bounds how long an opened project KEK stays in memory
	// after it was opened ([crypto] kek_cache_ttl; DefaultKEKCacheTTL):
	// within it, a project's payloads are sealed and opened without asking
	// the master key store (an HSM is off the per-request path); after it,
	// the KEK is opened again, so a master key store that went away is
	// noticed within this time.
	KEKCacheTTL time.Duration
	Logger      zerolog.Logger
	// AuditLogger, when set, logs each audit record as it is queued
	// instead of Logger. Its lines must not wait in a buffer
	// (logging.Buffered.AtOnce): until the record's batch reaches the
	// database, its line is the only trace of a key read outside the
	// process.
	AuditLogger *zerolog.Logger
	// ProjectKeyProtocol is the crypto_protocol new project keys are made
	// for (ProtocolAES128CBC by default, or ProtocolAES256CBC).
	ProjectKeyProtocol string
	// SecretStores, when not empty, are the secret stores
	// (secretstores.go); the ring given to New must then open the KEKs
	// every one of them seals. Empty: one store, the ring.
	SecretStores []SecretStoreDef
	// ReloadKeyring, when set, re-reads the master keys. The service calls
	// it (at most every KeyringReloadInterval) when it meets a KEK sealed by
	// a master key it does not know, and before sealing a new KEK, so that
	// after "arca-manage kek rotate" every running arca-api picks the new
	// key up without a restart.
	ReloadKeyring func() (envelope.MasterKeys, error)

	// Quotas are the default quotas of every project ([quotas] quota_*);
	// a resource missing from the map (or a nil map) is unlimited.
	Quotas Quotas
	// AllowDeleteWithConsumers lets a secret with consumers be deleted
	// without ?force=true ([DEFAULT] block_delete_with_consumers = false).
	AllowDeleteWithConsumers bool
	// ActiveKeyCacheTTL is the longest time any object server may keep
	// writing under a project key after it stopped being active (their
	// active_key_cache_ttl): a key deactivated less than this long ago is
	// destroyed only with force ([project_keys] active_key_cache_ttl; set
	// it a margin above theirs, ActiveKeyCacheMargin). It is also stated
	// with every active key the API names (ActiveKeyCacheTTLHeader).
	// Zero: DefaultActiveKeyCacheTTL.
	ActiveKeyCacheTTL time.Duration
}

// DefaultKEKCacheTTL is Options.KEKCacheTTL's default.
const DefaultKEKCacheTTL = 10 * time.Minute

// KeyringReloadInterval bounds how often the master keys are re-read.
const KeyringReloadInterval = 10 * time.Second

// Service implements the key service's operations over a Store. It checks
// the rules of each resource (sizes, types, states) and seals and opens
// payloads; who may call what is decided above it, by policy.
type Service struct {
	store  Store
	ring   atomic.Pointer[masterKeys]
	rand   io.Reader
	now    func() time.Time
	keks   *lru.Cache[string, cachedKEK]
	kekTTL time.Duration
	// sweep drops expired KEKs of projects not used again (kekSweeper).
	sweepOnce, sweepStopOnce sync.Once
	sweepStop                chan struct{}
	log                      zerolog.Logger
	// auditLog is Options.AuditLogger, or log.
	auditLog zerolog.Logger

	// Quotas and consumers (quotas.go, consumers.go).
	quotas      Quotas
	blockDelete bool

	// Project keys (projectkeys.go, audit.go).
	protocol    string
	destroyWait time.Duration // Options.ActiveKeyCacheTTL
	auditOnce   sync.Once
	audits      *auditWriter

	stores []secretStore // secretstores.go

	reloadKeyring func() (envelope.MasterKeys, error)
	reloadMu      sync.Mutex
	lastReload    time.Time
}

// New returns a Service over store whose project KEKs are sealed by ring.
func New(store Store, ring envelope.MasterKeys, opts Options) (*Service, error) {
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KEKCacheSize <= 0 {
		opts.KEKCacheSize = 4096
	}
	if opts.KEKCacheTTL < 0 {
		return nil, fmt.Errorf("kek_cache_ttl %s: must not be negative", opts.KEKCacheTTL)
	}
	if opts.KEKCacheTTL == 0 {
		opts.KEKCacheTTL = DefaultKEKCacheTTL
	}
	// Expiry is checked on read rather than by the expirable cache, whose
	// sweeper goroutine can never be stopped.
	keks, err := lru.New[string, cachedKEK](opts.KEKCacheSize)
	if err != nil {
		return nil, fmt.Errorf("kek cache: %w", err)
	}
	if opts.ProjectKeyProtocol != "" && ProjectKeyBits(opts.ProjectKeyProtocol) == 0 {
		return nil, fmt.Errorf("crypto_protocol %q: use %s or %s", opts.ProjectKeyProtocol, ProtocolAES128CBC, ProtocolAES256CBC)
	}
	if opts.ActiveKeyCacheTTL < 0 {
		return nil, fmt.Errorf("active_key_cache_ttl %s: must not be negative", opts.ActiveKeyCacheTTL)
	}
	if opts.ActiveKeyCacheTTL == 0 {
		opts.ActiveKeyCacheTTL = DefaultActiveKeyCacheTTL
	}
	stores, err := newSecretStores(opts.SecretStores, opts.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return nil, err
	}
	svc := &Service{store: store, stores: stores, rand: opts.Rand, now: opts.Now, keks: keks, kekTTL: opts.KEKCacheTTL, log: opts.Logger,
		protocol: opts.ProjectKeyProtocol, destroyWait: opts.ActiveKeyCacheTTL, reloadKeyring: opts.ReloadKeyring,
		quotas: opts.Quotas, blockDelete: !opts.AllowDeleteWithConsumers, auditLog: opts.Logger}
	if opts.AuditLogger != nil {
		svc.auditLog = *opts.AuditLogger
	}
	svc.ring.Store(&masterKeys{ring})
	return svc, nil
}

// keyring returns the current master keys.
func (s *Service) keyring() envelope.MasterKeys { return s.ring.Load().MasterKeys }

// masterKeys boxes the interface for atomic.Pointer.
type masterKeys struct{ envelope.MasterKeys }

// refreshKeyring re-reads the master keys if a reloader is configured and
// the last attempt is older than KeyringReloadInterval. A failed reload
// keeps the keys already loaded: a half-written key file must not take the
// service down.
func (s *Service) refreshKeyring() {
	if s.reloadKeyring == nil {
		return
	}
	now := s.now()
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if now.Sub(s.lastReload) < KeyringReloadInterval {
		return
	}
	s.lastReload = now
	ring, err := s.reloadKeyring()
	if err != nil {
		s.log.Error().Err(err).Msg("reloading master keys; keeping the ones loaded")
		return
	}
	if old := s.keyring(); old.ActiveID() != ring.ActiveID() {
		s.log.Info().Str("master_key_id", ring.ActiveID()).Msg("master keys reloaded: new active key")
	}
	s.ring.Store(&masterKeys{ring})
}

// Store returns the service's store (for health checks and admin tools).
func (s *Service) Store() Store { return s.store }

// Now returns the service clock's current time in UTC, truncated to the
// microseconds the database keeps.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// NewID returns a fresh resource id (UUID v4, as Barbican uses).
func NewID() string { return uuid.NewString() }

// projectKEK returns the project's KEK of a secret store in the clear,
// creating and sealing a new one the first time a project stores anything
// there. Concurrent first calls, in this process or another, converge on
// the one row that won the insert.
func (s *Service) projectKEK(ctx context.Context, projectID, store string) (*envelope.Cipher, error) {
	key := projectID + "\x00" + store
	if c, ok := s.keks.Get(key); ok && s.now().Before(c.until) {
		return c.kek, nil
	}
	s.sweepOnce.Do(s.startKEKSweeper)
	row, err := s.store.GetProjectKEK(ctx, projectID, store)
	if errors.Is(err, ErrNotFound) {
		row, err = s.createProjectKEK(ctx, projectID, store)
	}
	if err != nil {
		return nil, fmt.Errorf("project KEK: %w", err)
	}
	kek, err := s.openKEK(row)
	if err != nil {
		return nil, err
	}
	c, err := envelope.NewCipher(kek)
	clear(kek) // the cipher holds what it needs
	if err != nil {
		return nil, fmt.Errorf("project KEK of %s: %w", projectID, err)
	}
	s.keks.Add(key, cachedKEK{kek: c, until: s.now().Add(s.kekTTL)})
	return c, nil
}

// startKEKSweeper starts the goroutine that drops cached KEKs whose time
// has passed, every tenth of kek_cache_ttl (at least a second), until
// Close. Expiry is checked on every read; the sweep bounds how long an
// expired KEK stays in memory when its project is not used again
// (SECURITY.md, "What stays in memory"). The LRU alone kept it until 4,096
// newer KEKs pushed it out.
func (s *Service) startKEKSweeper() {
	s.sweepStop = make(chan struct{})
	every := max(s.kekTTL/10, time.Second)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sweepKEKs()
			case <-s.sweepStop:
				return
			}
		}
	}()
}

// sweepKEKs drops the cached KEKs whose time has passed.
func (s *Service) sweepKEKs() {
	now := s.now()
	for _, k := range s.keks.Keys() {
		if c, ok := s.keks.Peek(k); ok && !now.Before(c.until) {
			s.keks.Remove(k)
		}
	}
}

// stopKEKSweeper stops the sweeper, if it was started.
func (s *Service) stopKEKSweeper() {
	s.sweepOnce.Do(func() {}) // never started: nothing to stop
	s.sweepStopOnce.Do(func() {
		if s.sweepStop != nil {
			close(s.sweepStop)
		}
	})
}

// cachedKEK is an opened project KEK, made ready for sealing and opening
// (its key schedule is done once per opening, not once per payload), and
// the time it must be opened again.
type cachedKEK struct {
	kek   *envelope.Cipher
	until time.Time
}

// openKEK opens a stored KEK, re-reading the master keys once when it was
// sealed by a key this process has not loaded yet (a rotation elsewhere).
// The keys of every secret store open it: the row's master key id names
// the key, whichever store holds it.
func (s *Service) openKEK(row ProjectKEK) ([]byte, error) {
	ring := s.keyring()
	if !ring.Has(row.MasterKeyID) {
		s.refreshKeyring()
		ring = s.keyring()
	}
	return ring.OpenKEK(row.ProjectID, row.MasterKeyID, row.WrappedKEK)
}

func (s *Service) createProjectKEK(ctx context.Context, projectID, store string) (ProjectKEK, error) {
	s.refreshKeyring()
	sealer, err := s.storeKeys(store)
	if err != nil {
		return ProjectKEK{}, err
	}
	kek := make([]byte, envelope.KeySize)
	if _, err := io.ReadFull(s.rand, kek); err != nil {
		return ProjectKEK{}, fmt.Errorf("generating KEK: %w", err)
	}
	masterID, sealed, err := sealer.SealKEK(s.rand, projectID, kek)
	if err != nil {
		return ProjectKEK{}, err
	}
	now := s.Now()
	row := ProjectKEK{ProjectID: projectID, SecretStore: store, MasterKeyID: masterID, WrappedKEK: sealed, Created: now, Updated: now}
	err = s.store.CreateProjectKEK(ctx, row)
	if errors.Is(err, ErrConflict) {
		// Another request created it first: theirs is the project's KEK.
		return s.store.GetProjectKEK(ctx, projectID, store)
	}
	if err != nil {
		return ProjectKEK{}, err
	}
	s.log.Info().Str("project_id", projectID).Str("secret_store", store).Str("master_key_id", masterID).Msg("created project KEK")
	return row, nil
}

// SealForProject seals plaintext with the project's KEK, bound to aad.
// It is the KEK of the "" store (the global default's keys): project keys
// live there whatever the project's preferred secret store.
func (s *Service) SealForProject(ctx context.Context, projectID string, plaintext, aad []byte) ([]byte, error) {
	return s.sealInStore(ctx, projectID, "", plaintext, aad)
}

// OpenForProject opens a value sealed by SealForProject.
func (s *Service) OpenForProject(ctx context.Context, projectID string, sealed, aad []byte) ([]byte, error) {
	return s.openInStore(ctx, projectID, "", sealed, aad)
}

// sealInStore seals plaintext with the project's KEK of a secret store.
func (s *Service) sealInStore(ctx context.Context, projectID, store string, plaintext, aad []byte) ([]byte, error) {
	kek, err := s.projectKEK(ctx, projectID, store)
	if err != nil {
		return nil, err
	}
	return kek.Seal(s.rand, plaintext, aad)
}

// openInStore opens a value sealed by sealInStore.
func (s *Service) openInStore(ctx context.Context, projectID, store string, sealed, aad []byte) ([]byte, error) {
	kek, err := s.projectKEK(ctx, projectID, store)
	if err != nil {
		return nil, err
	}
	return kek.Open(sealed, aad)
}

// RandomBytes returns n bytes from the service's randomness source.
func (s *Service) RandomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return b, nil
}

// RewrapResult counts what a KEK rewrap did.
type RewrapResult struct {
	Scanned, Rewrapped, Skipped int
}

// RewrapKEKs reseals every project KEK not sealed by the active master key
// of its secret store with that key. It is online and resumable: each KEK
// is swapped with a compare-and-swap on its sealing key id, so a concurrent
// or repeated run never loses a KEK, and a run that stopped half-way just
// continues. The KEK itself does not change, so nothing sealed under it
// needs touching. progress, when not nil, is called after each project.
// KEKs recorded in a store that is no longer configured are left alone.
func (s *Service) RewrapKEKs(ctx context.Context, batch int, progress func(RewrapResult)) (RewrapResult, error) {
	if batch <= 0 {
		batch = 500
	}
	var res RewrapResult
	for _, store := range s.storeLabels() {
		if err := s.rewrapStore(ctx, store, batch, &res, progress); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (s *Service) rewrapStore(ctx context.Context, store string, batch int, res *RewrapResult, progress func(RewrapResult)) error {
	after := ""
	for {
		rows, err := s.store.ListProjectKEKs(ctx, store, after, batch)
		if err != nil {
			return fmt.Errorf("listing project KEKs of store %q after %q: %w", store, after, err)
		}
		if len(rows) == 0 {
			return nil
		}
		for _, row := range rows {
			after = row.ProjectID
			res.Scanned++
			changed, err := s.rewrapOne(ctx, row)
			if err != nil {
				return err
			}
			if changed {
				res.Rewrapped++
			} else {
				res.Skipped++
			}
			if progress != nil {
				progress(*res)
			}
		}
	}
}

func (s *Service) rewrapOne(ctx context.Context, row ProjectKEK) (bool, error) {
	ring := s.keyring()
	sealer, err := s.storeKeys(row.SecretStore)
	if err != nil {
		return false, err
	}
	if row.MasterKeyID == sealer.ActiveID() {
		return false, nil
	}
	kek, err := ring.OpenKEK(row.ProjectID, row.MasterKeyID, row.WrappedKEK)
	if err != nil {
		return false, err
	}
	masterID, sealed, err := sealer.SealKEK(s.rand, row.ProjectID, kek)
	if err != nil {
		return false, err
	}
	// Prove the new seal opens to the same KEK before it replaces the old.
	check, err := ring.OpenKEK(row.ProjectID, masterID, sealed)
	if err != nil || !bytes.Equal(check, kek) {
		return false, fmt.Errorf("project %s: resealed KEK does not verify", row.ProjectID)
	}
	next := ProjectKEK{ProjectID: row.ProjectID, SecretStore: row.SecretStore, MasterKeyID: masterID, WrappedKEK: sealed,
		Created: row.Created, Updated: s.Now()}
	err = s.store.ReplaceProjectKEK(ctx, next, row.MasterKeyID)
	if errors.Is(err, ErrConflict) {
		// Someone else resealed it meanwhile; theirs is as good as ours.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("project %s: storing resealed KEK: %w", row.ProjectID, err)
	}
	return true, nil
}
