package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Timeouts sized for a loaded 2-core machine: mariadb-install-db alone takes
// 7-9 s there.
const (
	installTimeout = 2 * time.Minute
	readyTimeout   = time.Minute
	stopTimeout    = 30 * time.Second
)

// MariaDB is a private mariadbd. Its methods are meant for the test's own
// goroutine; they are not safe for concurrent use.
type MariaDB struct {
	// Addr is host:port on 127.0.0.1; it stays the same across restarts.
	Addr string
	// DataDir is the server's datadir, kept across restarts.
	DataDir string

	bin     string
	args    []string
	errLog  string
	outLog  string // mariadbd's stdout and stderr, every start appended
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error         // cmd.Wait's result, valid once exited is closed
}

// StartMariaDB initialises a datadir under t.TempDir() and starts mariadbd on it;
// it returns once the server accepts connections. The server is killed
// when the test ends.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	server, err := lookBin("mariadbd", "mysqld")
	if err != nil {
		StackMissing(t, err.Error()+" (tools/stack.sh install installs mariadb-server)")
	}
	install, err := lookBin("mariadb-install-db", "mysql_install_db")
	if err != nil {
		StackMissing(t, err.Error()+" (tools/stack.sh install installs mariadb-server)")
	}

	dir := t.TempDir()
	s := &MariaDB{DataDir: filepath.Join(dir, "data"), bin: server,
		errLog: filepath.Join(dir, "error.log"), outLog: filepath.Join(dir, "output.log")}
	socket := filepath.Join(dir, "mysqld.sock")
	if len(socket) > 100 { // sun_path holds 108 bytes; a long TMPDIR would not fit
		short, err := os.MkdirTemp("", "mdb")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(short) })
		socket = filepath.Join(short, "s")
	}
	port, err := quietPort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	// Small InnoDB files and buffers make both the install and the start
	// quick; innodb_flush_log_at_trx_commit stays at its default (1), since
	// what the tests check is that a committed transaction survives a crash.
	innodb := []string{"--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"}
	var user []string
	if os.Geteuid() == 0 {
		user = []string{"--user=root"} // mariadbd refuses to run as root otherwise
	}

	// --skip-name-resolve: no lookup of this host's name (slow where DNS is
	// not answering) for accounts the server will not check anyway.
	installArgs := append([]string{"--no-defaults", "--datadir=" + s.DataDir, "--skip-test-db",
		"--skip-name-resolve"}, user...)
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, install, append(installArgs, innodb...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: %s: %v\n%s", install, err, out)
	}

	s.args = append([]string{
		"--no-defaults", // must come first: no /etc/mysql option file may change the setup
		"--datadir=" + s.DataDir,
		"--socket=" + socket,
		"--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"--tmpdir=" + dir,
		"--log-error=" + s.errLog,
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port),
		// After a kill the port can stay busy for a moment; mariadbd retries
		// binding instead of exiting.
		"--port-open-timeout=10",
		// No credentials to provision or leak: anyone on loopback is root.
		"--skip-grant-tables",
		"--skip-name-resolve",
		"--performance-schema=OFF",
	}, append(user, innodb...)...)

	t.Cleanup(func() { s.stop(t) })
	if err := s.launch(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := s.waitReady(); err != nil {
		t.Fatalf("testenv: %v\n%s", err, s.Log())
	}
	return s
}

// PID is the process id of the running mariadbd.
func (s *MariaDB) PID() int { return s.cmd.Process.Pid }

// Kill sends SIGKILL to mariadbd, as a crash or the OOM killer would, and
// returns once the process is gone.
func (s *MariaDB) Kill(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatalf("testenv: kill -9 %d: %v", s.PID(), err)
	}
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("testenv: mariadbd %d still running %s after SIGKILL", s.PID(), stopTimeout)
	}
}

// Restart starts mariadbd again on the same datadir and port, after Kill,
// and returns once it accepts connections (InnoDB crash recovery included).
func (s *MariaDB) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-s.exited:
	default:
		t.Fatalf("testenv: Restart while mariadbd %d is running", s.PID())
	}
	if err := s.launch(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := s.waitReady(); err != nil {
		t.Fatalf("testenv: restart: %v\n%s", err, s.Log())
	}
}

// validName is what CreateDatabase accepts: a name that needs no quoting.
var validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// CreateDatabase creates an empty utf8mb4 database, as operators are told
// to.
func (s *MariaDB) CreateDatabase(t testing.TB, name string) {
	t.Helper()
	if !validName.MatchString(name) {
		t.Fatalf("testenv: database name %q: use [a-z][a-z0-9_]*", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := s.Open(t, "")
	defer db.Close() // no idle connection left to die with the server
	// The name matched validName: nothing to quote.
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
}

// Open returns a connection pool to dbName ("" for none), for a test to
// look at what a server under test wrote; it is closed when the test ends.
// Like any client's, its connections fail while the server is down.
func (s *MariaDB) Open(t testing.TB, dbName string) *sql.DB {
	t.Helper()
	connector, err := mysql.NewConnector(s.config(dbName))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { _ = db.Close() }) // runs before the server stops
	return db
}

// URL is the [database] connection for dbName, oslo-style
// (mysql+pymysql://root@127.0.0.1:PORT/dbName?query).
func (s *MariaDB) URL(dbName string, query url.Values) string {
	u := url.URL{Scheme: "mysql+pymysql", User: url.User("root"), Host: s.Addr, Path: "/" + dbName, RawQuery: query.Encode()}
	return u.String()
}

// Log returns the server's error log (every start, appended) and whatever
// it wrote to stdout and stderr, for failure messages.
func (s *MariaDB) Log() string {
	var logs []byte
	for _, name := range []string{s.errLog, s.outLog} {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			b = fmt.Appendf(nil, "(%v)\n", err)
		}
		logs = append(logs, b...)
	}
	return string(logs)
}

func (s *MariaDB) config(dbName string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", s.Addr, dbName
	cfg.Timeout = time.Second
	return cfg
}

// launch starts a mariadbd process; only the test goroutine calls it, and
// never while one is running.
func (s *MariaDB) launch() error {
	// A file rather than a buffer: the child writes to it directly, so
	// reading it while mariadbd runs races with nothing.
	out, err := os.OpenFile(s.outLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	return nil
}

// waitReady returns once a client can log in, or when mariadbd exits or
// takes longer than readyTimeout.
func (s *MariaDB) waitReady() error {
	connector, err := mysql.NewConnector(s.config(""))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for {
		conn, err := connector.Connect(ctx)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-s.exited:
			return fmt.Errorf("mariadbd exited before accepting connections: %w", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("mariadbd not accepting connections on %s after %s: %w", s.Addr, readyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop kills the server if it is running. Nothing is lost by not shutting
// it down cleanly: its datadir is deleted next, and InnoDB's clean
// shutdown takes seconds on a loaded machine.
func (s *MariaDB) stop(t testing.TB) {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = syscall.Kill(s.PID(), syscall.SIGKILL)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			t.Errorf("testenv: mariadbd %d still running %s after SIGKILL", s.PID(), stopTimeout)
		}
	}
	if t.Failed() {
		t.Logf("testenv: mariadbd log:\n%s", s.Log())
	}
}

// lookBin finds the first of names in PATH or, as they are often outside
// a non-root PATH, in /usr/sbin and /usr/bin.
func lookBin(names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("none of %s is installed (PATH, /usr/sbin, /usr/bin)", strings.Join(names, ", "))
}

// quietPort picks a free loopback port below Linux's default ephemeral range
// (32768-60999). While the server is down, a port from that range could be
// handed to an outgoing connection, or to a client dialling the server's
// own port (a TCP self-connect), and the restart would find it taken.
func quietPort() (int, error) {
	var err error
	for range 100 {
		port := 20000 + rand.IntN(12000)
		var ln net.Listener
		if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return port, ln.Close()
		}
	}
	return 0, fmt.Errorf("no free loopback port in 20000-31999: %w", err)
}
