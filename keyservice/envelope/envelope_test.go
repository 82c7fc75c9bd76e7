package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpenBindsAssociatedData(t *testing.T) {
	sealed, err := Seal(rand.Reader, key(1), []byte("payload"), SecretAAD("p1", "s1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("payload")) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := Open(key(1), sealed, SecretAAD("p1", "s1"))
	if err != nil || string(got) != "payload" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]struct {
		key, sealed, aad []byte
	}{
		"other secret":        {key(1), sealed, SecretAAD("p1", "s2")},
		"other project":       {key(1), sealed, SecretAAD("p2", "s1")},
		"kind confusion":      {key(1), sealed, ProjectKeyAAD("p1", "s1")},
		"separator confusion": {key(1), sealed, SecretAAD("p1\x00s", "1")},
		"wrong key":           {key(2), sealed, SecretAAD("p1", "s1")},
		"tampered":            {key(1), flipped, SecretAAD("p1", "s1")},
		"truncated":           {key(1), sealed[:10], SecretAAD("p1", "s1")},
		"empty":               {key(1), nil, SecretAAD("p1", "s1")},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Open(c.key, c.sealed, c.aad); !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %v, want ErrOpen", err)
			}
		})
	}
}

func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyringFile(t *testing.T) {
	good := FormatKey(MasterKey{ID: "old", Key: key(1)}) + "# comment\n\n" + FormatKey(MasterKey{ID: "new", Key: key(2)})
	ring, err := LoadKeyringFile(writeKeyFile(t, good, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if ring.ActiveID() != "new" {
		t.Fatalf("active = %q, want the last key", ring.ActiveID())
	}
	tests := []struct {
		name, content string
		mode          os.FileMode
		missing       bool
		want          []string
	}{
		{name: "missing", missing: true, want: []string{"does not exist", "arca-manage kek rotate"}},
		{name: "group readable", content: good, mode: 0o640, want: []string{"mode 0640", "chmod 600"}},
		{name: "world readable", content: good, mode: 0o644, want: []string{"mode 0644", "chmod 600"}},
		{name: "short key", content: "k1 eHh4eHh4eHh4eHh4eHh4eA==\n", mode: 0o600, want: []string{`"k1" is 16 bytes`, "32 bytes"}},
		{name: "bad base64", content: "k1 !!!!\n", mode: 0o600, want: []string{"not valid base64"}},
		{name: "empty", content: "# nothing\n", mode: 0o600, want: []string{"no master key"}},
		{name: "duplicate id", content: FormatKey(MasterKey{ID: "a", Key: key(1)}) + FormatKey(MasterKey{ID: "a", Key: key(2)}), mode: 0o600, want: []string{"appears twice"}},
		{name: "three fields", content: "a b c\n", mode: 0o600, want: []string{"line 1"}},
		// over the limit, the cut would fall before the last, active key
		// and leave an older one active
		{name: "over 1 MiB", content: FormatKey(MasterKey{ID: "old", Key: key(1)}) + strings.Repeat("# padding\n", 110000) +
			FormatKey(MasterKey{ID: "new", Key: key(2)}), mode: 0o600, want: []string{"over 1048576"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "absent.key")
			if !tt.missing {
				path = writeKeyFile(t, tt.content, tt.mode)
			}
			_, err := LoadKeyringFile(path)
			if err == nil {
				t.Fatal("loaded a bad key file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "AQEBAQEB") {
				t.Errorf("error leaks key material: %v", err)
			}
		})
	}
}

func TestKeyringRewrapKeepsKEK(t *testing.T) {
	oldRing, _ := NewKeyring([]MasterKey{{ID: "a", Key: key(1)}})
	newRing, _ := NewKeyring([]MasterKey{{ID: "a", Key: key(1)}, {ID: "b", Key: key(2)}})
	kek := key(9)
	id, sealed, err := oldRing.SealKEK(rand.Reader, "p", kek)
	if err != nil || id != "a" {
		t.Fatal(id, err)
	}
	opened, err := newRing.OpenKEK("p", id, sealed)
	if err != nil || !bytes.Equal(opened, kek) {
		t.Fatalf("new ring cannot open old KEK: %v", err)
	}
	if _, err := newRing.OpenKEK("other-project", id, sealed); err == nil {
		t.Fatal("KEK opened for another project")
	}
	if _, err := newRing.OpenKEK("p", "b", sealed); err == nil {
		t.Fatal("KEK opened under the wrong master key id")
	}
}

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte(FormatKey(MasterKey{ID: "a", Key: key(1)})))
	f.Add([]byte("# c\nx y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ring, err := ParseKeyring(bytes.NewReader(data))
		if err == nil && ring.ActiveID() == "" {
			t.Fatal("keyring without active key")
		}
	})
}
