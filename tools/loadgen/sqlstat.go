package main

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
)

// SQL statement counters of the MariaDB/MySQL server behind the targets
// (-mysql DSN): how many statements, and how many of them were prepares,
// each request cost. The counters are the server's, so other clients of
// the same server (Keystone, Barbican, other test runs) count too.

const sqlCountersQuery = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_stmt_prepare', 'Com_commit')"

// SQLStats reads the server's global status counters.
type SQLStats struct{ db *sql.DB }

// OpenSQLStats connects with a go-sql-driver DSN; "" disables it.
func OpenSQLStats(dsn string) (*SQLStats, error) {
	if dsn == "" {
		return nil, nil
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("-mysql: %w", err)
	}
	cfg.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("-mysql: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return &SQLStats{db: db}, nil
}

// Sample returns the counters now (nil on any error: the figures are then
// left out, the run goes on).
func (s *SQLStats) Sample(ctx context.Context) map[string]uint64 {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, sqlCountersQuery)
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil
		}
		if v, err := strconv.ParseUint(value, 10, 64); err == nil {
			out[name] = v
		}
	}
	if rows.Err() != nil {
		return nil
	}
	return out
}

// sqlPerRequest describes the counter deltas per request.
func sqlPerRequest(delta map[string]uint64, requests uint64) string {
	if len(delta) == 0 || requests == 0 {
		return ""
	}
	per := func(k string) string { return fmt.Sprintf("%.2f", float64(delta[k])/float64(requests)) }
	// our own SHOW STATUS queries are 2 per slice: negligible
	return fmt.Sprintf("%s statements (%s prepares, %s commits), server-wide", per("Questions"), per("Com_stmt_prepare"), per("Com_commit"))
}
