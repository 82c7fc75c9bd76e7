package ringhash

import "testing"

func TestHashPathAndPartition(t *testing.T) {
	// Values from Swift's own hash_path with this prefix/suffix (python3:
	// md5(b'pre' + b'/a/c/o' + b'suf')).
	h := Hasher{Prefix: "pre", Suffix: "suf"}
	tests := []struct{ a, c, o, want string }{
		{"a", "c", "o", md5hex("pre/a/c/osuf")},
		{"AUTH_x", "cont", "dir/obj ü", "3d9c281107b4f9680c9c0fcfc7b0fd65"}, // python3 hashlib
		{"a", "", "", md5hex("pre/asuf")},
	}
	for _, tc := range tests {
		if got := h.HashPath(tc.a, tc.c, tc.o); got != tc.want {
			t.Errorf("HashPath(%q,%q,%q) = %s, want %s", tc.a, tc.c, tc.o, got, tc.want)
		}
	}
	if p := h.Partition("a", "c", "o", 10); p >= 1024 {
		t.Fatalf("partition %d out of range", p)
	}
}

func TestParse(t *testing.T) {
	c, err := Parse([]byte("[swift-hash]\nswift_hash_path_prefix = p#x\nswift_hash_path_suffix = s\n[storage-policy:0]\nname = gold\ndefault = yes\n[storage-policy:2]\nname = silver\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "p#x" || c.Suffix != "s" {
		t.Fatalf("salt %q %q", c.Prefix, c.Suffix)
	}
	if len(c.Policies) != 2 || !c.Policies[0].Default || c.Policies[2].Name != "silver" {
		t.Fatalf("policies %+v", c.Policies)
	}
	if _, err := Parse([]byte("[swift-hash]\n")); err == nil {
		t.Fatal("no salt accepted")
	}
}

func md5hex(s string) string {
	return Hasher{}.HashPathRaw(s)
}
