package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Target is one server under test and how to authenticate to it.
type Target struct {
	Name string
	URL  string // base URL, without /v1
	// Auth is "noauth" (identity headers) or "keystone" (X-Auth-Token).
	Auth string
	// Project is the X-Project-Id in noauth mode; in keystone mode the
	// token's project id, filled in by Login.
	Project string
	// User is the ARCA_TEST_<USER>_* account for keystone mode.
	User string
	// Cleanup deletes what the secret-store scenario created.
	Cleanup bool
	// Record marks a baseline measured for the record: its failed
	// requests (a server that cannot keep up with an open-loop rate) are
	// reported, and do not fail the run.
	Record bool

	token string
}

// ParseTarget reads "name,url,auth[,cleanup][,record]" where auth is
// "noauth:PROJECT" or "keystone:USER" (USER names the ARCA_TEST_<USER>_USER,
// _PASSWORD and _PROJECT variables of `tools/stack.sh env`).
func ParseTarget(s string) (*Target, error) {
	f := strings.Split(s, ",")
	if len(f) < 3 || f[0] == "" || !strings.HasPrefix(f[1], "http") {
		return nil, fmt.Errorf("target %q: want name,url,noauth:PROJECT|keystone:USER[,cleanup][,record]", s)
	}
	t := &Target{Name: f[0], URL: strings.TrimRight(f[1], "/")}
	kind, arg, _ := strings.Cut(f[2], ":")
	switch {
	case kind == "noauth" && arg != "":
		t.Auth, t.Project = "noauth", arg
	case kind == "keystone" && arg != "":
		t.Auth, t.User = "keystone", arg
	default:
		return nil, fmt.Errorf("target %q: auth %q is neither noauth:PROJECT nor keystone:USER", s, f[2])
	}
	for _, opt := range f[3:] {
		switch opt {
		case "cleanup":
			t.Cleanup = true
		case "record":
			t.Record = true
		default:
			return nil, fmt.Errorf("target %q: unknown option %q", s, opt)
		}
	}
	return t, nil
}

// Login obtains a project-scoped Keystone token for keystone targets. One
// token serves the whole run, so the server's token cache is warm after
// the warm-up.
func (t *Target) Login(ctx context.Context) error {
	if t.Auth != "keystone" {
		return nil
	}
	env := func(k string) (string, error) {
		if v := os.Getenv(k); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("target %s: %s is not set (eval \"$(tools/stack.sh env)\")", t.Name, k)
	}
	u := strings.ReplaceAll(strings.ToUpper(t.User), "-", "_") // arca-object: ARCA_TEST_ARCA_OBJECT_*
	var vals [6]string
	for i, k := range []string{"ARCA_TEST_KEYSTONE_URL", "ARCA_TEST_" + u + "_USER", "ARCA_TEST_" + u + "_PASSWORD",
		"ARCA_TEST_" + u + "_PROJECT", "ARCA_TEST_USER_DOMAIN", "ARCA_TEST_PROJECT_DOMAIN"} {
		v, err := env(k)
		if err != nil {
			return err
		}
		vals[i] = v
	}
	body, err := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name": vals[1], "password": vals[2], "domain": map[string]string{"name": vals[4]},
			}},
		},
		"scope": map[string]any{"project": map[string]any{
			"name": vals[3], "domain": map[string]string{"name": vals[5]},
		}},
	}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(vals[0], "/")+"/auth/tokens", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	// Keystone's uwsgi has no keep-alive: a client of its own, closed after.
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("target %s: keystone login as %s: %w", t.Name, vals[1], err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("target %s: keystone login as %s: %s: %.200s", t.Name, vals[1], resp.Status, raw)
	}
	var tok struct {
		Token struct {
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil {
		return fmt.Errorf("target %s: keystone token body: %w", t.Name, err)
	}
	t.token = resp.Header.Get("X-Subject-Token")
	t.Project = tok.Token.Project.ID
	if t.token == "" || t.Project == "" {
		return fmt.Errorf("target %s: keystone answered without a token or project id", t.Name)
	}
	return nil
}

// authorize sets the identity headers on req; service claims the object
// servers' role in noauth mode (project-key payloads are theirs alone).
func (t *Target) authorize(req *http.Request, service bool) {
	switch t.Auth {
	case "keystone":
		req.Header.Set("X-Auth-Token", t.token)
	default:
		req.Header.Set("X-Project-Id", t.Project)
		req.Header.Set("X-User-Id", "loadgen")
		if service {
			req.Header.Set("X-Roles", "key-manager:object-server")
		}
	}
}

func (t *Target) String() string {
	if t.Auth == "keystone" {
		return fmt.Sprintf("%s (%s, keystone token of %s)", t.Name, t.URL, t.User)
	}
	return fmt.Sprintf("%s (%s, noauth project %s)", t.Name, t.URL, t.Project)
}
