package envelope

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// MasterKey is one master key-encryption key.
type MasterKey struct {
	ID  string
	Key []byte
}

// Keyring holds the master keys. The active one seals new project KEKs; the
// others still open KEKs sealed before a rotation until a rewrap moves them.
type Keyring struct {
	keys   map[string][]byte
	active string
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ErrNoKeyring is wrapped by LoadKeyringFile when the file does not exist.
var ErrNoKeyring = errors.New("master key file does not exist")

// NewKeyring builds a keyring; the last key is the active one.
func NewKeyring(keys []MasterKey) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no master keys")
	}
	r := &Keyring{keys: make(map[string][]byte, len(keys))}
	for _, k := range keys {
		if !keyIDPattern.MatchString(k.ID) {
			return nil, fmt.Errorf("master key id %q: use 1-64 letters, digits, '.', '_' or '-'", k.ID)
		}
		if len(k.Key) != KeySize {
			return nil, fmt.Errorf("master key %q is %d bytes; master keys are %d bytes (AES-256): generate one with \"arca-manage kek rotate\"", k.ID, len(k.Key), KeySize)
		}
		if _, dup := r.keys[k.ID]; dup {
			return nil, fmt.Errorf("master key id %q appears twice", k.ID)
		}
		r.keys[k.ID] = bytes.Clone(k.Key)
		r.active = k.ID
	}
	return r, nil
}

// ActiveID is the id of the key that seals new KEKs.
func (r *Keyring) ActiveID() string { return r.active }

// Has reports whether the keyring holds the named key.
func (r *Keyring) Has(id string) bool {
	_, ok := r.keys[id]
	return ok
}

// IDs returns every key id, in no particular order.
func (r *Keyring) IDs() []string {
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	return ids
}

// SealKEK seals a project KEK with the active master key.
func (r *Keyring) SealKEK(rand io.Reader, projectID string, kek []byte) (masterKeyID string, sealed []byte, err error) {
	sealed, err = Seal(rand, r.keys[r.active], kek, KEKAAD(projectID, r.active))
	if err != nil {
		return "", nil, err
	}
	return r.active, sealed, nil
}

// OpenKEK opens a project KEK sealed by the named master key.
func (r *Keyring) OpenKEK(projectID, masterKeyID string, sealed []byte) ([]byte, error) {
	key, ok := r.keys[masterKeyID]
	if !ok {
		return nil, fmt.Errorf("project %s: KEK sealed by master key %q, which is not in the keyring", projectID, masterKeyID)
	}
	kek, err := Open(key, sealed, KEKAAD(projectID, masterKeyID))
	if err != nil {
		return nil, fmt.Errorf("project %s: opening KEK with master key %q: %w", projectID, masterKeyID, err)
	}
	return kek, nil
}

// Equal reports whether two keyrings hold the same keys and active id, in
// constant time with respect to key bytes.
func (r *Keyring) Equal(o *Keyring) bool {
	if r.active != o.active || len(r.keys) != len(o.keys) {
		return false
	}
	same := 1
	for id, k := range r.keys {
		ok, found := o.keys[id]
		if !found {
			return false
		}
		same &= subtle.ConstantTimeCompare(k, ok)
	}
	return same == 1
}

// ParseKeyring reads the keyring text format: one key per line,
// "<id> <base64 of 32 bytes>", blank lines and '#' comments ignored. The last
// key is the active one, so a rotation is an appended line.
func ParseKeyring(r io.Reader) (*Keyring, error) {
	var keys []MasterKey
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"<key id> <base64 key>\"", line)
		}
		key, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: master key %q is not valid base64", line, fields[0])
		}
		keys = append(keys, MasterKey{ID: fields[0], Key: key})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading master keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("no master key found: each line must be \"<key id> <base64 key>\"")
	}
	return NewKeyring(keys)
}

// FormatKey renders one keyring line.
func FormatKey(k MasterKey) string {
	return k.ID + " " + base64.StdEncoding.EncodeToString(k.Key) + "\n"
}

// LoadKeyringFile loads a keyring file, refusing files that group or others
// can read or write: a master key readable by anyone but the service is a
// master key leaked.
func LoadKeyringFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: create one with \"arca-manage kek rotate --master-key-file %s\" (or set [crypto] master_key_file)", ErrNoKeyring, path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening master key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o; it must not be accessible to group or others: run \"chmod 600 %s\"", path, perm, path)
	}
	// Refused whole when it is larger than any key file: cut at the
	// limit on a line boundary, it would lose its last, active key and
	// make an older one active.
	const maxKeyFile = 1 << 20
	if st.Size() > maxKeyFile {
		return nil, fmt.Errorf("master key file %s is %d bytes, over %d: not a key file Arca writes", path, st.Size(), maxKeyFile)
	}
	ring, err := ParseKeyring(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return ring, nil
}
