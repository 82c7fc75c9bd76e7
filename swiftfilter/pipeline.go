package swiftfilter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// The decision socket is the pipeline shape's link between the Swift
// proxy's arca middleware (python/arca_swift) and the filter's rules: a
// Unix stream socket carrying protocol version 1, one JSON object per line
// each way, any number of requests per connection, answered in order.
//
//	request:  {"v":1,"method":"PUT","path":"/v1/AUTH_p/c/o",
//	           "destination_account":["AUTH_q"],"project_id":"p"}
//	answer:   {"v":1,"key_id":"..."}     attach this key id
//	          {"v":1,"key_id":"...","account":"AUTH_p","reuse_ms":N}
//	                                     attach it, and to the account's
//	                                     writes by the same project_id for
//	                                     N ms from before the request
//	          {"v":1}                    no key id: go on
//	          {"v":1,"status":503,"message":"..."}  refuse the write
//	          {"v":1,"error":"..."}      protocol fault; the connection closes
//
// path is the WSGI PATH_INFO (PEP 3333: each byte of the decoded path as
// one code point 0-255), destination_account the Destination-Account
// values when the request has one, project_id the X-Project-Id that
// keystonemiddleware's authtoken set from the validated user token (absent
// for anonymous, domain- or system-scoped requests). No key material ever
// crosses it: only key ids.
//
// reuse_ms lets the middleware keep a key id instead of asking for every
// write: it is what is left of the filter's cached active key id, whose
// lifetime the key service's destroy guard bounds, so the id is never
// used past the moment the filter itself would have asked again. Counted
// by the middleware from before it sent the request, it ends no later than
// the filter's entry. account is the path's account as a WSGI string: the
// middleware keeps the answer only under the account it parsed itself.

// DecisionProtocol is the decision socket's protocol version.
const DecisionProtocol = 1

// maxDecisionLine bounds one request line: a decision is a path and a
// header (Swift keeps each under 8 KiB), but an open_listing request holds
// a whole listing page's names and tokens (10000 entries by default, each
// name up to 1024 bytes, escaped). Only the proxy's own processes can
// connect.
const maxDecisionLine = 32 << 20

type decisionRequest struct {
	V int `json:"v"`
	// Op is empty for a write decision, opListing to open a listing's
	// sealed values (pipeline_listing.go).
	Op                 string   `json:"op,omitempty"`
	Method             string   `json:"method"`
	Path               string   `json:"path"`
	DestinationAccount []string `json:"destination_account,omitempty"`
	ProjectID          string   `json:"project_id,omitempty"`

	// Account, Container and Items are an open_listing request's.
	Account   string        `json:"account,omitempty"`
	Container string        `json:"container,omitempty"`
	Items     []listingItem `json:"items,omitempty"`
}

type decisionAnswer struct {
	V     int    `json:"v"`
	KeyID string `json:"key_id,omitempty"`
	// Account and ReuseMS come with a key id that may be kept: for the
	// writes to Account by the same project, ReuseMS milliseconds.
	Account string `json:"account,omitempty"`
	ReuseMS int64  `json:"reuse_ms,omitempty"`
	Status  int    `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
	// Values answer an open_listing request, one per item: the opened
	// value, or null where the token stays as it is.
	Values []*string `json:"values,omitempty"`
}

// PipelineSettings are swift-filter.conf's [pipeline]: with Socket set,
// arca-swift-filter serves the decision socket for the middleware in the
// Swift proxy's pipeline instead of a reverse proxy.
type PipelineSettings struct {
	// Socket is the socket file's path.
	Socket string
	// Group may connect besides the filter's own user (and root): the
	// Swift proxy's. Empty: the socket is 0600, else 0660 and that group's.
	Group string
	// IdleTimeout closes a connection idle that long; the middleware
	// reconnects.
	IdleTimeout time.Duration
}

// DecisionServer answers the decision socket with a Filter's rules.
type DecisionServer struct {
	filter *Filter
	log    zerolog.Logger
	uid    int
	gid    int // -1: no group may connect
	idle   time.Duration
}

// ListenDecisions creates the socket file of s (replacing a stale one)
// with its mode and group set before any client can reach it, and
// returns its listener and the server for it.
func (f *Filter) ListenDecisions(ctx context.Context, s PipelineSettings, log zerolog.Logger) (net.Listener, *DecisionServer, error) {
	gid := -1
	if s.Group != "" {
		g, err := lookupGroup(s.Group)
		if err != nil {
			return nil, nil, err
		}
		gid = g
	}
	ln, err := listenPrivate(ctx, s.Socket, gid)
	if err != nil {
		return nil, nil, err
	}
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = 5 * time.Minute
	}
	return ln, &DecisionServer{filter: f, log: log, uid: os.Geteuid(), gid: gid, idle: idle}, nil
}

func lookupGroup(name string) (int, error) {
	if g, err := strconv.Atoi(name); err == nil && g >= 0 {
		return g, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("[pipeline] socket_group: %w", err)
	}
	return strconv.Atoi(g.Gid)
}

// listenPrivate binds the socket in a fresh 0700 folder next to path, sets
// its mode (0600, or 0660 and gid's group) and only then renames it to
// path: no client ever sees it with looser permissions.
func listenPrivate(ctx context.Context, path string, gid int) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".arca-socket-")
	if err != nil {
		return nil, fmt.Errorf("decision socket: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tmp := filepath.Join(dir, "s")
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("decision socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		if err := os.Chown(tmp, -1, gid); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("decision socket: %w", err)
		}
	}
	if err := os.Chmod(tmp, mode); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("decision socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket == 0 {
		_ = ln.Close()
		return nil, fmt.Errorf("decision socket: %s exists and is not a socket", path)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("decision socket: %w", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("decision socket: %w", err)
	}
	return &unlinkListener{Listener: ln, path: path, file: fi}, nil
}

// unlinkListener removes the socket file when closed, if the file is
// still its own: a newer arca-swift-filter started beside it (a restart
// without a gap, a rolling upgrade) has renamed its own socket over the
// path, which the old one's exit must leave in place.
type unlinkListener struct {
	net.Listener
	path string
	file os.FileInfo
	once sync.Once
}

func (l *unlinkListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
			_ = os.Remove(l.path)
		}
	})
	return err
}

// Serve answers connections on ln until ctx ends.
func (d *DecisionServer) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("decision socket: %w", err)
		}
		wg.Go(func() { d.serveConn(ctx, c) })
	}
}

// peerAllowed checks the connecting process's credentials (SO_PEERCRED)
// as well as the file's mode: the filter's own user, root, or a process
// whose group is the socket's.
func (d *DecisionServer) peerAllowed(c net.Conn) (bool, string) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false, "not a Unix connection"
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false, err.Error()
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false, fmt.Sprint("peer credentials: ", errors.Join(err, cerr))
	}
	who := fmt.Sprintf("pid %d uid %d gid %d", cred.Pid, cred.Uid, cred.Gid)
	switch {
	case int(cred.Uid) == d.uid, cred.Uid == 0:
		return true, who
	case d.gid >= 0 && int(cred.Gid) == d.gid:
		return true, who
	}
	return false, who
}

func (d *DecisionServer) serveConn(ctx context.Context, c net.Conn) {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer func() { _ = c.Close() }()
	enc := json.NewEncoder(c)
	if ok, who := d.peerAllowed(c); !ok {
		d.log.Warn().Str("peer", who).Msg("decision socket: connection refused: neither the filter's user, root nor the socket's group")
		_ = enc.Encode(decisionAnswer{V: DecisionProtocol, Error: "not allowed"})
		return
	}
	rd := bufio.NewReaderSize(c, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(d.idle))
		line, err := readLine(rd)
		if err != nil {
			if len(line) > 0 || !errors.Is(err, errEOFLine) {
				_ = enc.Encode(decisionAnswer{V: DecisionProtocol, Error: err.Error()})
			}
			return
		}
		ans, fatal := d.answer(ctx, line)
		if err := enc.Encode(ans); err != nil || fatal {
			return
		}
	}
}

var errEOFLine = errors.New("connection closed")

// readLine reads one line of at most maxDecisionLine bytes.
func readLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := rd.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxDecisionLine {
			return line, errors.New("request line too long")
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case len(line) == 0:
			return nil, errEOFLine
		default:
			return line, fmt.Errorf("incomplete request line: %w", err)
		}
	}
}

// answer decides on one request line; fatal closes the connection.
func (d *DecisionServer) answer(ctx context.Context, line []byte) (ans decisionAnswer, fatal bool) {
	ans.V = DecisionProtocol
	var req decisionRequest
	if err := json.Unmarshal(line, &req); err != nil {
		ans.Error = "bad request line: " + err.Error()
		return ans, true
	}
	if req.V != DecisionProtocol {
		ans.Error = fmt.Sprintf("protocol version %d is not served (only %d)", req.V, DecisionProtocol)
		return ans, true
	}
	if req.Op == opListing {
		return d.openListing(ctx, req)
	}
	if req.Op != "" {
		ans.Error = fmt.Sprintf("unknown op %q", req.Op)
		return ans, true
	}
	path, ok := wsgiBytes(req.Path)
	if !ok {
		ans.Error = "path is not a WSGI string"
		return ans, true
	}
	start := time.Now()
	dec := d.filter.DecideWrite(ctx, WriteRequest{
		Method: req.Method, Path: path, DestinationAccount: req.DestinationAccount,
		HasUser: req.ProjectID != "", TokenProject: req.ProjectID,
	})
	ev := d.log.Debug()
	if d.filter.cfg.AccessLog && dec.Account != "" {
		ev = d.log.Info()
	}
	ev.Str("method", req.Method).Str("account", dec.Account).Str("key_id", dec.KeyID).
		Int("status", dec.Status).Str("outcome", dec.Outcome).Dur("took", time.Since(start)).Msg("decision")
	ans.KeyID, ans.Status, ans.Message = dec.KeyID, dec.Status, dec.Message
	if dec.KeyID != "" && !dec.ReuseUntil.IsZero() {
		if ms := time.Until(dec.ReuseUntil).Milliseconds(); ms > 0 {
			ans.Account, ans.ReuseMS = wsgiString(dec.Account), ms
		}
	}
	return ans, false
}

// wsgiString is wsgiBytes' inverse: each byte of s as one code point.
func wsgiString(s string) string {
	r := make([]rune, len(s))
	for i := range len(s) {
		r[i] = rune(s[i])
	}
	return string(r)
}

// wsgiBytes turns a WSGI string (each byte one code point 0-255) back into
// the bytes it stands for.
func wsgiBytes(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return "", false
		}
		b = append(b, byte(r))
	}
	return string(b), true
}
