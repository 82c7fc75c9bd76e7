package api_test

import (
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"opendev.org/x/arca/internal/dbconn"
)

// A dbTracker asserts the exact database changes of API requests: it dumps
// every table of the test database, and after a request reports what
// changed as SQL statements, one per row (INSERT with every column, UPDATE
// with the changed columns only, DELETE), keyed by the primary key and
// sorted, the same text on SQLite and MariaDB. A request that writes a row
// or a column the test does not name fails the test, as does one that
// misses a row it names.
//
// Values are rendered alike on both dialects: times as SQLite stores them,
// binary columns (sealed payloads, wrapped keys) as their length only, since
// their bytes are random; the columns in volatile (random ids the request
// does not return) the same way.
type dbTracker struct {
	t        *testing.T
	db       *sql.DB
	dialect  dbconn.Dialect
	volatile map[string]bool // "table.column"
	prev     map[string]map[string]dumpRow
}

// dumpRow is one row: its primary key as text, and its columns rendered.
type dumpRow struct {
	key  string
	cols map[string]string
}

// keyAuditVolatile are key_audit's random columns: the event id each
// record gets, and the request id arca-api makes up when the client sends
// none.
var keyAuditVolatile = []string{"key_audit.event_id", "key_audit.request_id"}

func newTracker(t *testing.T, db *sql.DB, dialect dbconn.Dialect, volatile ...string) *dbTracker {
	t.Helper()
	tr := &dbTracker{t: t, db: db, dialect: dialect, volatile: map[string]bool{}}
	for _, v := range volatile {
		tr.volatile[v] = true
	}
	tr.prev = tr.dump()
	return tr
}

// assertChanges checks the changes since the last check (or the tracker's
// creation) against want: one statement a line, in any order, after
// replacing each vars name with its value ("$SECRET", id, ...).
func (tr *dbTracker) assertChanges(want string, vars ...string) {
	tr.t.Helper()
	got := tr.changes()
	wantLines := []string{}
	r := strings.NewReplacer(vars...)
	for _, l := range strings.Split(r.Replace(want), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			wantLines = append(wantLines, l)
		}
	}
	slices.Sort(wantLines)
	if !slices.Equal(got, wantLines) {
		tr.t.Fatalf("database changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
}

// changes returns the statements that turn the last dump into the current
// database, sorted, and keeps the current dump for the next call.
func (tr *dbTracker) changes() []string {
	tr.t.Helper()
	cur := tr.dump()
	var out []string
	for table, rows := range cur {
		before := tr.prev[table]
		for key, row := range rows {
			old, ok := before[key]
			if !ok {
				out = append(out, insertStatement(table, row))
				continue
			}
			if set := changedColumns(old, row); set != "" {
				out = append(out, "UPDATE "+table+" SET "+set+" WHERE "+row.key+";")
			}
		}
		for key, row := range before {
			if _, ok := rows[key]; !ok {
				out = append(out, "DELETE FROM "+table+" WHERE "+row.key+";")
			}
		}
	}
	tr.prev = cur
	slices.Sort(out)
	return out
}

func insertStatement(table string, row dumpRow) string {
	cols := slices.Sorted(mapKeys(row.cols))
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = row.cols[c]
	}
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ");"
}

func changedColumns(old, cur dumpRow) string {
	var set []string
	for _, c := range slices.Sorted(mapKeys(cur.cols)) {
		if old.cols[c] != cur.cols[c] {
			set = append(set, c+" = "+cur.cols[c])
		}
	}
	return strings.Join(set, ", ")
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// dump reads every table but golang-migrate's version table.
func (tr *dbTracker) dump() map[string]map[string]dumpRow {
	tr.t.Helper()
	out := map[string]map[string]dumpRow{}
	for _, table := range tr.strings(tr.tablesQuery()) {
		if table == "schema_migrations" {
			continue
		}
		out[table] = tr.dumpTable(table, tr.strings(tr.primaryKeyQuery(), table))
	}
	return out
}

func (tr *dbTracker) tablesQuery() string {
	if tr.dialect == dbconn.MySQL {
		return "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
	}
	return "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
}

func (tr *dbTracker) primaryKeyQuery() string {
	if tr.dialect == dbconn.MySQL {
		return "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = DATABASE() " +
			"AND table_name = ? AND constraint_name = 'PRIMARY' ORDER BY ordinal_position"
	}
	return "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk"
}

// strings runs a query returning one text column.
func (tr *dbTracker) strings(query string, args ...any) []string {
	tr.t.Helper()
	rows, err := tr.db.Query(query, args...)
	if err != nil {
		tr.t.Fatalf("dumping the database: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tr.t.Fatalf("dumping the database: %v", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		tr.t.Fatalf("dumping the database: %v", err)
	}
	return out
}

// dumpTable reads a table's rows keyed by their primary key (every column
// for a table without one).
func (tr *dbTracker) dumpTable(table string, pk []string) map[string]dumpRow {
	tr.t.Helper()
	rows, err := tr.db.Query("SELECT * FROM " + table)
	if err != nil {
		tr.t.Fatalf("dumping %s: %v", table, err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		tr.t.Fatalf("dumping %s: %v", table, err)
	}
	out := map[string]dumpRow{}
	for rows.Next() {
		vals := make([]any, len(types))
		ptrs := make([]any, len(types))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tr.t.Fatalf("dumping %s: %v", table, err)
		}
		row := dumpRow{cols: map[string]string{}}
		for i, ct := range types {
			name := strings.ToLower(ct.Name())
			row.cols[name] = tr.render(table+"."+name, ct.DatabaseTypeName(), vals[i])
		}
		keyCols := pk
		if len(keyCols) == 0 {
			keyCols = slices.Sorted(mapKeys(row.cols))
		}
		conds := make([]string, len(keyCols))
		for i, c := range keyCols {
			c = strings.ToLower(c)
			conds[i] = c + " = " + row.cols[c]
		}
		row.key = strings.Join(conds, " AND ")
		out[row.key] = row
	}
	if err := rows.Err(); err != nil {
		tr.t.Fatalf("dumping %s: %v", table, err)
	}
	return out
}

// render spells a value the same way whichever dialect returned it.
func (tr *dbTracker) render(column, dbType string, v any) string {
	if v == nil {
		return "NULL"
	}
	dbType = strings.ToUpper(dbType)
	binary := strings.Contains(dbType, "BLOB") || strings.Contains(dbType, "BINARY")
	switch x := v.(type) {
	case time.Time:
		return "'" + x.UTC().Format("2006-01-02 15:04:05.000000") + "'"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	case []byte:
		v = string(x)
	}
	s := fmt.Sprint(v)
	switch {
	case binary || tr.volatile[column]:
		return fmt.Sprintf("<%d bytes>", len(s))
	case strings.Contains(dbType, "INT") || strings.Contains(dbType, "DECIMAL"):
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
