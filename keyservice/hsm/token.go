//go:build cgo

package hsm

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"

	"opendev.org/x/arca/keyservice"
	"opendev.org/x/arca/keyservice/envelope"
)

// Token is a connection to the PKCS#11 token that holds the master keys.
// It is safe for concurrent use.
type Token struct {
	cfg Config
	p   *pkcs11.Ctx

	// mu is held for reading by every operation using conn, for writing
	// while connecting or dropping a connection.
	mu     sync.RWMutex
	conn   *conn // nil while the token is unreachable
	closed bool  // after Close: the module is unloaded, never reconnect

	retryMu sync.Mutex
	lastTry time.Time

	// keys are the ids last seen in the token; kept while it is away so
	// Has and ActiveID answer without it.
	keys atomic.Pointer[keySet]
}

type keySet struct {
	ids    map[string]bool
	active string // the greatest id: ids are timestamps
}

// conn is one live session set with the handles of the master keys, which
// are valid only for this connection.
type conn struct {
	slot     uint
	sessions chan pkcs11.SessionHandle
	handles  map[string]pkcs11.ObjectHandle
}

// Open loads the module, finds the token, logs in and lists the master
// keys. A token holding no master key yet is not an error here (ActiveID is
// empty): "arca-manage kek rotate" creates the first one.
func Open(cfg Config) (*Token, error) {
	cfg = cfg.withDefaults()
	if cfg.Library == "" || cfg.TokenLabel == "" {
		return nil, errors.New("[pkcs11] library_path and token_label are required with master_key_backend = pkcs11")
	}
	p := pkcs11.New(cfg.Library)
	if p == nil {
		return nil, fmt.Errorf("[pkcs11] library_path %s: cannot load the PKCS#11 module", cfg.Library)
	}
	t := &Token{cfg: cfg, p: p}
	t.keys.Store(&keySet{ids: map[string]bool{}})
	c, err := t.connect()
	if err != nil {
		p.Destroy()
		return nil, err
	}
	t.conn = c
	return t, nil
}

// connect initialises the module and opens a logged-in connection.
func (t *Token) connect() (*conn, error) {
	if err := t.p.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return nil, fmt.Errorf("initialising PKCS#11 module %s: %w", t.cfg.Library, err)
	}
	c, err := t.openConn()
	if err != nil {
		_ = t.p.Finalize()
		return nil, err
	}
	return c, nil
}

func (t *Token) openConn() (*conn, error) {
	slot, err := t.findSlot()
	if err != nil {
		return nil, err
	}
	c := &conn{slot: slot, sessions: make(chan pkcs11.SessionHandle, t.cfg.Sessions)}
	sh, err := t.p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("opening a session on token %q: %w", t.cfg.TokenLabel, err)
	}
	// Login state is shared by every session of the application.
	if err := t.p.Login(sh, pkcs11.CKU_USER, t.cfg.PIN); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = t.p.CloseSession(sh)
		if isCode(err, pkcs11.CKR_PIN_INCORRECT) || isCode(err, pkcs11.CKR_PIN_LEN_RANGE) {
			return nil, fmt.Errorf("logging in to token %q: the PIN ([pkcs11] pin or ARCA_PKCS11_PIN) is wrong: %w", t.cfg.TokenLabel, err)
		}
		return nil, fmt.Errorf("logging in to token %q: %w", t.cfg.TokenLabel, err)
	}
	if err := t.listKeys(c, sh); err != nil {
		_ = t.p.CloseSession(sh)
		return nil, err
	}
	c.sessions <- sh
	return c, nil
}

func (t *Token) findSlot() (uint, error) {
	slots, err := t.p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("listing the slots of PKCS#11 module %s: %w", t.cfg.Library, err)
	}
	for _, s := range slots {
		info, err := t.p.GetTokenInfo(s)
		if err == nil && info.Label == t.cfg.TokenLabel {
			return s, nil
		}
	}
	return 0, fmt.Errorf("no PKCS#11 token labelled %q in module %s (%d tokens present): is the HSM reachable and the token initialised?",
		t.cfg.TokenLabel, t.cfg.Library, len(slots))
}

// listKeys finds the master keys (CKA_LABEL = KeyLabel) and their ids.
func (t *Token) listKeys(c *conn, sh pkcs11.SessionHandle) error {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, t.cfg.KeyLabel),
	}
	if err := t.p.FindObjectsInit(sh, tmpl); err != nil {
		return fmt.Errorf("searching token %q for master keys: %w", t.cfg.TokenLabel, err)
	}
	var found []pkcs11.ObjectHandle
	for {
		objs, _, err := t.p.FindObjects(sh, 64)
		if err != nil {
			_ = t.p.FindObjectsFinal(sh)
			return fmt.Errorf("searching token %q for master keys: %w", t.cfg.TokenLabel, err)
		}
		if len(objs) == 0 {
			break
		}
		found = append(found, objs...)
	}
	if err := t.p.FindObjectsFinal(sh); err != nil {
		return fmt.Errorf("searching token %q for master keys: %w", t.cfg.TokenLabel, err)
	}
	handles := make(map[string]pkcs11.ObjectHandle, len(found))
	set := &keySet{ids: make(map[string]bool, len(found))}
	for _, h := range found {
		id, props, err := t.readKey(sh, h)
		if err != nil {
			return fmt.Errorf("reading a master key's attributes in token %q: %w", t.cfg.TokenLabel, err)
		}
		// Only a key made in the token and never able to leave it is a
		// master key: one with the label that someone holding the PIN
		// imported, or made extractable, would become the active key
		// (the greatest id) and every KEK sealed under it would open
		// outside the token, after the PIN had changed too. Refused
		// whole and loudly: startup fails, a reload fails and keeps the
		// keys it had.
		if !props.inside() {
			return fmt.Errorf("%w: token %q holds a key labelled %q, id %q, that was not generated in the token or can leave it "+
				"(%+v): it is not an Arca master key; remove it from the token (and find out who put it there)",
				errRefusedKey, t.cfg.TokenLabel, t.cfg.KeyLabel, id, props)
		}
		handles[id] = h
		set.ids[id] = true
	}
	ids := make([]string, 0, len(set.ids))
	for id := range set.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		set.active = ids[len(ids)-1]
	}
	c.handles = handles
	t.keys.Store(set)
	return nil
}

// ActiveID is the newest master key in the token ("" when it has none).
func (t *Token) ActiveID() string { return t.keys.Load().active }

// Has reports whether the token held the key when last listed.
func (t *Token) Has(id string) bool { return t.keys.Load().ids[id] }

// IDs returns the master key ids, oldest first.
func (t *Token) IDs() []string {
	set := t.keys.Load()
	ids := make([]string, 0, len(set.ids))
	for id := range set.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Reload lists the master keys again (after a rotation by arca-manage).
func (t *Token) Reload() error {
	return t.do(func(c *conn, sh pkcs11.SessionHandle) error { return t.listKeys(c, sh) })
}

// Close logs out and unloads the module.
func (t *Token) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.drop()
	t.p.Destroy()
	return nil
}

// drop closes the connection; t.mu is held for writing.
func (t *Token) drop() {
	if t.conn == nil {
		return
	}
	_ = t.p.CloseAllSessions(t.conn.slot)
	_ = t.p.Finalize()
	t.conn = nil
}

// do runs f on a session of a live connection, connecting first if the
// token was lost (at most every RetryInterval). A PKCS#11 failure other
// than a ciphertext that does not authenticate drops the connection and is
// returned wrapping keyservice.ErrUnavailable.
func (t *Token) do(f func(*conn, pkcs11.SessionHandle) error) error {
	t.mu.RLock()
	if t.conn == nil {
		t.mu.RUnlock()
		if err := t.reconnect(); err != nil {
			return err
		}
		t.mu.RLock()
	}
	c := t.conn
	if c == nil {
		t.mu.RUnlock()
		return fmt.Errorf("PKCS#11 token %q is unreachable: %w", t.cfg.TokenLabel, keyservice.ErrUnavailable)
	}
	sh, err := t.session(c)
	if err == nil {
		err = f(c, sh)
	}
	if err != nil && tokenTrouble(err) {
		t.mu.RUnlock()
		t.lose(c, err)
		return fmt.Errorf("PKCS#11 token %q: %w: %w", t.cfg.TokenLabel, keyservice.ErrUnavailable, err)
	}
	select {
	case c.sessions <- sh:
	default:
		_ = t.p.CloseSession(sh)
	}
	t.mu.RUnlock()
	return err
}

func (t *Token) session(c *conn) (pkcs11.SessionHandle, error) {
	select {
	case sh := <-c.sessions:
		return sh, nil
	default:
	}
	sh, err := t.p.OpenSession(c.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("opening a session: %w", err)
	}
	return sh, nil
}

// lose drops the connection c after a token failure, unless another
// goroutine already replaced it.
func (t *Token) lose(c *conn, _ error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == c {
		t.drop()
	}
	t.retryMu.Lock()
	t.lastTry = time.Now()
	t.retryMu.Unlock()
}

// reconnect tries to connect again unless a try is more recent than
// RetryInterval: while the token is away, requests fail at once rather
// than each waiting on it.
func (t *Token) reconnect() error {
	t.retryMu.Lock()
	if time.Since(t.lastTry) < t.cfg.RetryInterval {
		t.retryMu.Unlock()
		return fmt.Errorf("PKCS#11 token %q is unreachable (retrying every %s): %w", t.cfg.TokenLabel, t.cfg.RetryInterval, keyservice.ErrUnavailable)
	}
	t.lastTry = time.Now()
	t.retryMu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("PKCS#11 token %q: connection closed: %w", t.cfg.TokenLabel, keyservice.ErrUnavailable)
	}
	if t.conn != nil {
		return nil
	}
	c, err := t.connect()
	if err != nil {
		return fmt.Errorf("reconnecting to PKCS#11 token: %w: %w", keyservice.ErrUnavailable, err)
	}
	t.conn = c
	return nil
}

// tokenTrouble tells failures of the token (the connection is dropped)
// from a sealed value that does not authenticate.
func tokenTrouble(err error) bool {
	if errors.Is(err, envelope.ErrOpen) || errors.Is(err, errNoKey) || errors.Is(err, errRefusedKey) {
		return false
	}
	return true
}

var (
	errNoKey = errors.New("master key not in the token")
	// errRefusedKey: the token holds a key with the master keys' label
	// that is no master key (listKeys); the keys loaded before stay.
	errRefusedKey = errors.New("refusing the token's master keys")
)

// notAuthentic tells, among C_Decrypt's failures once C_DecryptInit
// succeeded (the token and the key were there), a GCM tag that does not
// verify. PKCS#11 names it CKR_ENCRYPTED_DATA_INVALID; SoftHSM2 reports it
// as CKR_GENERAL_ERROR, and other modules as CKR_FUNCTION_FAILED.
func notAuthentic(err error) bool {
	for _, code := range []uint{pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED} {
		if isCode(err, code) {
			return true
		}
	}
	return false
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// SealKEK seals a project KEK inside the token with the active master key.
func (t *Token) SealKEK(rand io.Reader, projectID string, kek []byte) (string, []byte, error) {
	id := t.ActiveID()
	if id == "" {
		return "", nil, fmt.Errorf("token %q holds no Arca master key: create one with \"arca-manage kek rotate\"", t.cfg.TokenLabel)
	}
	out := make([]byte, 1+envelope.NonceSize)
	out[0] = envelope.SealVersion
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return "", nil, fmt.Errorf("sealing KEK: reading nonce: %w", err)
	}
	err := t.do(func(c *conn, sh pkcs11.SessionHandle) error {
		h, ok := c.handles[id]
		if !ok {
			return fmt.Errorf("%w: %q", errNoKey, id)
		}
		params := pkcs11.NewGCMParams(out[1:], envelope.KEKAAD(projectID, id), 128)
		defer params.Free()
		if err := t.p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("C_EncryptInit: %w", err)
		}
		ct, err := t.p.Encrypt(sh, kek)
		if err != nil {
			return fmt.Errorf("C_Encrypt: %w", err)
		}
		out = append(out, ct...)
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("project %s: sealing KEK with master key %q: %w", projectID, id, err)
	}
	return id, out, nil
}

// OpenKEK opens a project KEK inside the token.
func (t *Token) OpenKEK(projectID, masterKeyID string, sealed []byte) ([]byte, error) {
	if !t.Has(masterKeyID) {
		return nil, fmt.Errorf("project %s: KEK sealed by master key %q, which token %q does not hold", projectID, masterKeyID, t.cfg.TokenLabel)
	}
	if len(sealed) < 1+envelope.NonceSize+16 || sealed[0] != envelope.SealVersion {
		return nil, fmt.Errorf("project %s: opening KEK with master key %q: %w", projectID, masterKeyID, envelope.ErrOpen)
	}
	var kek []byte
	err := t.do(func(c *conn, sh pkcs11.SessionHandle) error {
		h, ok := c.handles[masterKeyID]
		if !ok {
			return fmt.Errorf("%w: %q", errNoKey, masterKeyID)
		}
		params := pkcs11.NewGCMParams(sealed[1:1+envelope.NonceSize], envelope.KEKAAD(projectID, masterKeyID), 128)
		defer params.Free()
		if err := t.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("C_DecryptInit: %w", err)
		}
		var err error
		kek, err = t.p.Decrypt(sh, sealed[1+envelope.NonceSize:])
		if notAuthentic(err) {
			return envelope.ErrOpen
		}
		if err != nil {
			return fmt.Errorf("C_Decrypt: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("project %s: opening KEK with master key %q: %w", projectID, masterKeyID, err)
	}
	if len(kek) != envelope.KeySize {
		return nil, fmt.Errorf("project %s: KEK sealed by %q is %d bytes: %w", projectID, masterKeyID, len(kek), envelope.ErrOpen)
	}
	return kek, nil
}
