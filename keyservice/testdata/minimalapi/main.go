// Command minimalapi is the baseline beside arca-api's CPU per request in
// make bench (issue 21.4), as goproxy is the filter's: the least a Go
// process that stores and returns secrets over HTTP and MySQL is. It is
// net/http's server, encoding/json, and database/sql with
// go-sql-driver/mysql on the same MariaDB as arca-api, one SQL statement
// per request:
//
//   - POST /v1/secrets: the JSON body's "payload" inserted under the
//     X-Project-Id header's project; 201 {"secret_ref": ...};
//   - GET /v1/secrets/{id}/payload: the payload selected by id and
//     project, as text/plain;
//   - DELETE /v1/secrets/{id}: the row deleted; 204.
//
// No encryption, no policy, no audit, no tokens, no logs, no metrics:
// what it costs is what this machine charges for an HTTP request, a JSON
// document and a SQL round trip, which arca-api pays too. tools/bench.sh
// builds it and measures it beside arca-api and Barbican, in the same
// rounds, its CPU read as theirs is. Not for use beyond that.
//
// Usage: MINIMALAPI_DSN=DSN minimalapi HOST:PORT (DSN in go-sql-driver's
// form, from the environment so that no password shows in the process
// list). It makes its table, minimal_secrets, when missing; GET
// /healthcheck answers OK.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

func main() {
	dsn := os.Getenv("MINIMALAPI_DSN")
	if len(os.Args) != 2 || dsn == "" {
		fmt.Fprintln(os.Stderr, "usage: MINIMALAPI_DSN=DSN minimalapi HOST:PORT")
		os.Exit(2)
	}
	if err := run(dsn, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "minimalapi:", err)
		os.Exit(1)
	}
}

func run(dsn, addr string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return err
	}
	// one round trip per statement, as arca-api (client-side placeholders)
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	// a pool as large as arca-api's default, kept: no dial per request
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS minimal_secrets (
		id CHAR(36) NOT NULL PRIMARY KEY,
		project_id VARCHAR(64) NOT NULL,
		payload VARBINARY(20000) NOT NULL)`); err != nil {
		return fmt.Errorf("creating minimal_secrets: %w", err)
	}
	s := &server{db: db, base: "http://" + addr}
	hs := &http.Server{Addr: addr, Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return hs.ListenAndServe()
}

type server struct {
	db   *sql.DB
	base string
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthcheck" {
		_, _ = io.WriteString(w, "OK")
		return
	}
	project := r.Header.Get("X-Project-Id")
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/secrets")
	if !ok || project == "" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	ctx := r.Context()
	switch {
	case r.Method == http.MethodPost && rest == "":
		s.store(ctx, w, r, project)
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/payload"):
		s.payload(ctx, w, strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/payload"), project)
	case r.Method == http.MethodDelete && rest != "":
		if _, err := s.db.ExecContext(ctx, "DELETE FROM minimal_secrets WHERE id = ? AND project_id = ?", rest[1:], project); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (s *server) store(ctx context.Context, w http.ResponseWriter, r *http.Request, project string) {
	var in struct {
		Payload string `json:"payload"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil || in.Payload == "" {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	id := rand.Text() // 26 characters, as unique as a UUID
	if _, err := s.db.ExecContext(ctx, "INSERT INTO minimal_secrets (id, project_id, payload) VALUES (?, ?, ?)", id, project, in.Payload); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"secret_ref": s.base + "/v1/secrets/" + id})
}

func (s *server) payload(ctx context.Context, w http.ResponseWriter, id, project string) {
	var payload []byte
	err := s.db.QueryRowContext(ctx, "SELECT payload FROM minimal_secrets WHERE id = ? AND project_id = ?", id, project).Scan(&payload)
	if errors.Is(err, sql.ErrNoRows) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(payload)
}
