package objectserver

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestGetDeviceChecked: GET and HEAD answer 507 for a device that is
// missing or not a directory (the device's stat is made only when the
// object's directory does not list), 404 for a missing object on a
// device that is there, 200 for the object.
func TestGetDeviceChecked(t *testing.T) {
	e := newEnv(t)
	if r := e.put("/sda/1/AUTH_p1/c/here", "body", nil); r.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", r.Status)
	}
	if err := os.WriteFile(filepath.Join(e.devices, "sdf"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/sda/1/AUTH_p1/c/here", http.StatusOK},
		{"/sda/1/AUTH_p1/c/absent", http.StatusNotFound},
		{"/sdz/1/AUTH_p1/c/here", http.StatusInsufficientStorage},
		{"/sdf/1/AUTH_p1/c/here", http.StatusInsufficientStorage},
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := e.do(method, tc.path, nil, nil)
			readBody(t, r)
			if r.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d", method, tc.path, r.StatusCode, tc.want)
			}
		}
	}
}
