package objectserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"opendev.org/x/arca/internal/keyclient"
	"opendev.org/x/arca/objectserver/diskfile"
	"opendev.org/x/arca/objectserver/ringhash"
)

// Version is what OPTIONS reports, in Swift's Server header style.
const Version = "object-server/2.30.1 arca"

// Server is the object server's http.Handler.
type Server struct {
	cfg      Config
	swift    *ringhash.Conf
	disk     *diskfile.Manager
	keys     keyclient.Resolver
	log      zerolog.Logger
	client   *http.Client
	allowed  map[string]bool
	updates  sync.WaitGroup
	now      func() time.Time
	userAgnt string
	obs      Observability // observability.go
	// legacyBefore is cfg.LegacyPlaintextBefore as a Swift timestamp
	// (zero: no plaintext object is served under crypto_driver = objcrypt).
	legacyBefore diskfile.Timestamp
	// trusted are the peers answered (trust.go).
	trusted []netip.Prefix
	// metaKeys are the derived metadata keys of project keys (metakeys.go).
	metaKeys *metaKeys
	// listingKeys are the derived listing keys of project keys
	// (metakeys.go, listingetag.go).
	listingKeys *listingKeys
	// dataKeys are the derived keys of recently read objects (datakeys.go).
	dataKeys *dataKeys
	// ssyncSlots holds a token per SSYNC exchange under way, at most
	// cfg.ReplicationConcurrency (nil: no limit).
	ssyncSlots chan struct{}
}

// Option configures a Server at construction.
type Option func(*Server)

// New builds a server. keys may be nil only when encryption is off.
func New(cfg Config, swift *ringhash.Conf, keys keyclient.Resolver, log zerolog.Logger, opts ...Option) (*Server, error) {
	if cfg.Encrypt && keys == nil {
		return nil, errors.New("objectserver: encryption needs a key resolver")
	}
	if len(cfg.AllowedHeaders) == 0 {
		cfg.AllowedHeaders = DefaultAllowedHeaders
	}
	if len(cfg.ResellerPrefixes) == 0 {
		cfg.ResellerPrefixes = []string{"AUTH_"}
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = 64 << 10
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = 5368709122
	}
	if cfg.ClientTimeout == 0 {
		cfg.ClientTimeout = 60 * time.Second
	}
	if cfg.ContainerUpdateTimeout == 0 {
		cfg.ContainerUpdateTimeout = time.Second
	}
	if cfg.ConnTimeout == 0 {
		cfg.ConnTimeout = 500 * time.Millisecond
	}
	if cfg.NodeTimeout == 0 {
		cfg.NodeTimeout = 3 * time.Second
	}
	s := &Server{
		cfg:   cfg,
		swift: swift,
		disk: &diskfile.Manager{
			Devices: cfg.Devices, MountCheck: cfg.MountCheck,
			ReclaimAge: cfg.ReclaimAge, Hasher: swift.Hasher,
			FallocateReserve: cfg.FallocateReserve, DisableFallocate: cfg.DisableFallocate,
		},
		keys:        keys,
		log:         log,
		allowed:     map[string]bool{},
		now:         time.Now,
		userAgnt:    fmt.Sprintf("object-server %d", os.Getpid()),
		metaKeys:    newMetaKeys(cfg.KeyClient.MaterialTTL),
		listingKeys: newListingKeys(cfg.KeyClient.MaterialTTL),
		dataKeys:    newDataKeys(cfg.KeyClient.MaterialTTL),
	}
	if cfg.ReplicationConcurrency > 0 {
		s.ssyncSlots = make(chan struct{}, cfg.ReplicationConcurrency)
	}
	s.trusted = cfg.TrustedNetworks
	if s.trusted == nil {
		s.trusted = loopbackNetworks
	}
	if !cfg.LegacyPlaintextBefore.IsZero() {
		s.legacyBefore = diskfile.FromTime(cfg.LegacyPlaintextBefore)
	}
	for _, h := range cfg.AllowedHeaders {
		s.allowed[strings.ToLower(strings.TrimSpace(h))] = true
	}
	for idx, p := range swift.Policies {
		if p.ECFragments > 0 {
			if s.disk.ECFragments == nil {
				s.disk.ECFragments = map[int]int{}
			}
			s.disk.ECFragments[idx] = p.ECFragments
		}
	}
	for _, o := range opts {
		o(s)
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost:   16,
			ResponseHeaderTimeout: cfg.NodeTimeout,
			DisableCompression:    true,
		},
		Timeout: cfg.ConnTimeout + cfg.NodeTimeout,
	}
	return s, nil
}

// Wait waits for container updates still running in the background.
func (s *Server) Wait() { s.updates.Wait() }

// DiskManager exposes the on-disk layer (tests, tools).
func (s *Server) DiskManager() *diskfile.Manager { return s.disk }

// request is one parsed object or partition request.
type request struct {
	device, partition          string
	account, container, object string
	rest                       string // REPLICATE suffixes
	policy                     int
	ts                         diskfile.Timestamp
	hasTS                      bool
	w                          http.ResponseWriter
	r                          *http.Request
	log                        zerolog.Logger
	ctx                        context.Context
	start                      time.Time
	// phased and finish are a multiphase PUT's, whose connection is
	// taken over (multiphase.go): its body and the final answer.
	phased *phasedBody
	finish func()
}

// statusWriter records the status for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 && w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP dispatches on the method, as Swift's ObjectController does.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: rw}
	start := s.now()
	txn := r.Header.Get("X-Trans-Id")
	log := s.log.With().Str("request_id", txn).Str("method", r.Method).Logger()
	defer func() {
		log.Info().Str("path", r.URL.EscapedPath()).Int("status", sw.status).
			Dur("duration", time.Since(start)).Msg("request")
		s.observeRequest(r, sw.status, start)
	}()
	if !openToAll(r) && !s.trustedPeer(r) {
		// Before anything else, /metrics and OPTIONS included: this port
		// serves plaintext to whoever may talk to it (trust.go).
		log.Warn().Str("peer", r.RemoteAddr).Msg("request from a peer outside trusted_networks refused")
		textError(sw, r, http.StatusForbidden, "Forbidden: this peer is not in the object server's trusted_networks")
		return
	}
	if s.serveObservability(sw, r) {
		return
	}
	if r.URL.Path == "/healthcheck" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		sw.Header().Set("Content-Type", "text/plain")
		sw.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = sw.Write([]byte("OK"))
		}
		return
	}
	if r.Method == http.MethodOptions {
		sw.Header().Set("Allow", "DELETE, GET, HEAD, OPTIONS, POST, PUT, REPLICATE, SSYNC")
		sw.Header().Set("Server", Version)
		sw.Header().Set("Content-Type", swobHTML)
		sw.Header().Set("Content-Length", "0")
		sw.WriteHeader(http.StatusOK)
		return
	}
	if !objectMethods[r.Method] {
		// As Swift, before the path is looked at; SSYNC too: replication
		// is rsync's (doc.go).
		textError(sw, r, http.StatusMethodNotAllowed, "")
		return
	}
	req, code, msg := s.parse(r)
	if code != 0 {
		textError(sw, r, code, msg)
		return
	}
	req.w, req.r, req.log, req.ctx, req.start = sw, r, log, r.Context(), start
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		err = s.handleGet(req)
	case http.MethodPut:
		err = s.handlePut(req)
	case http.MethodPost:
		err = s.handlePost(req)
	case http.MethodDelete:
		err = s.handleDelete(req)
	case "REPLICATE":
		err = s.handleReplicate(req)
	case "SSYNC":
		err = s.handleSsync(req)
	}
	s.respond(req, err) // respond.go: the one place errors become answers
	if req.finish != nil {
		req.finish()
	}
}

// objectMethods are the methods the server answers.
var objectMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPut: true,
	http.MethodPost: true, http.MethodDelete: true, "REPLICATE": true, "SSYNC": true,
}

// parse splits /<dev>/<part>/<a>/<c>/<o> (or /<dev>/<part>[/<suffixes>] for
// REPLICATE) and checks the policy and timestamp, returning a status and
// message when the request must be refused.
func (s *Server) parse(r *http.Request) (*request, int, string) {
	raw := r.URL.EscapedPath()
	path, err := url.PathUnescape(raw)
	if err != nil {
		return nil, http.StatusBadRequest, "Invalid path"
	}
	// NUL is the reserved namespace's mark (Swift's internal names, such
	// as object versioning's), checked per name below.
	if !utf8.ValidString(path) {
		return nil, http.StatusPreconditionFailed, "Invalid UTF8 or contains NULL"
	}
	if !strings.HasPrefix(path, "/") {
		return nil, http.StatusBadRequest, "Invalid path: " + raw
	}
	req := &request{}
	parts := strings.SplitN(path[1:], "/", 5)
	if r.Method == "REPLICATE" || r.Method == "SSYNC" {
		parts = strings.SplitN(path[1:], "/", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return nil, http.StatusBadRequest, "Invalid path: " + raw
		}
		req.device, req.partition = parts[0], parts[1]
		if len(parts) == 3 {
			req.rest = parts[2]
		}
	} else {
		if len(parts) != 5 || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[3] == "" || parts[4] == "" {
			return nil, http.StatusBadRequest, "Invalid path: " + raw
		}
		req.device, req.partition = parts[0], parts[1]
		req.account, req.container, req.object = parts[2], parts[3], parts[4]
		if msg := checkReserved(req.account, req.container, req.object); msg != "" {
			return nil, http.StatusBadRequest, msg
		}
	}
	if strings.ContainsRune(req.device, 0) || strings.ContainsRune(req.partition, 0) {
		return nil, http.StatusPreconditionFailed, "Invalid UTF8 or contains NULL"
	}
	if req.device == "." || req.device == ".." {
		return nil, http.StatusBadRequest, "Invalid device: " + url.PathEscape(req.device)
	}
	if req.partition == "." || req.partition == ".." {
		return nil, http.StatusBadRequest, "Invalid partition: " + url.PathEscape(req.partition)
	}
	pol := strings.TrimSpace(r.Header.Get("X-Backend-Storage-Policy-Index"))
	if pol != "" {
		n, err := strconv.Atoi(pol)
		if err != nil {
			return nil, http.StatusServiceUnavailable, "No policy with index " + pol
		}
		req.policy = n
	}
	p, ok := s.swift.Policies[req.policy]
	if !ok {
		return nil, http.StatusServiceUnavailable, "No policy with index " + strconv.Itoa(req.policy)
	}
	if p.Type != "replication" && p.Type != "erasure_coding" {
		return nil, http.StatusServiceUnavailable, "Policy type " + p.Type + " is not supported by arca-object-server"
	}
	if v := r.Header.Get("X-Timestamp"); v != "" {
		ts, err := diskfile.ParseTimestamp(v)
		if err != nil {
			return nil, http.StatusBadRequest, "Invalid X-Timestamp header"
		}
		req.ts, req.hasTS = ts, true
	}
	switch r.Method {
	case http.MethodPut, http.MethodPost, http.MethodDelete:
		if !req.hasTS {
			return nil, http.StatusBadRequest, "Missing X-Timestamp header"
		}
	case "REPLICATE":
		if !s.cfg.ReplicationServer {
			return nil, http.StatusMethodNotAllowed, ""
		}
	}
	return req, 0, ""
}

// reserved marks the names of Swift's reserved namespace.
const reserved = "\x00"

// checkReserved is Swift's validate_internal_obj: a name holding NUL must
// begin with it, and a reserved container holds only reserved objects
// and the other way round (except in the auto-created "." accounts).
func checkReserved(account, container, object string) string {
	bad := func(name string) bool { return strings.Contains(name, reserved) && !strings.HasPrefix(name, reserved) }
	switch {
	case bad(account):
		return "Invalid reserved-namespace account"
	case bad(container):
		return "Invalid reserved-namespace container"
	case strings.HasPrefix(account, "."):
		return ""
	case bad(object):
		return "Invalid reserved-namespace object"
	}
	switch rc, ro := strings.HasPrefix(container, reserved), strings.HasPrefix(object, reserved); {
	case rc && !ro:
		return "Invalid user-namespace object in reserved-namespace container"
	case ro && !rc:
		return "Invalid reserved-namespace object in user-namespace container"
	}
	return ""
}

// pythonTitle is str.title() for ASCII header names: a letter is upper
// case after a non-letter, lower case after a letter.
func pythonTitle(s string) string {
	b := []byte(s)
	prevLetter := false
	for i, c := range b {
		isLetter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if isLetter {
			if prevLetter {
				b[i] = c | 0x20
			} else {
				b[i] = c &^ 0x20
			}
		}
		prevLetter = isLetter
	}
	return string(b)
}

// The metadata name prefixes, lower case.
const (
	userMetaPrefix         = "x-object-meta-"
	sysMetaPrefix          = "x-object-sysmeta-"
	transientSysMetaPrefix = "x-object-transient-sysmeta-"
	arcaMetaPrefix         = "x-object-sysmeta-arca-"           // sysmeta.Prefix, lower case
	arcaTransientPrefix    = "x-object-transient-sysmeta-arca-" // sysmeta.TransientPrefix, lower case

)

func isUserMeta(lk string) bool {
	return strings.HasPrefix(lk, userMetaPrefix) && len(lk) > len(userMetaPrefix)
}
func isSysMeta(lk string) bool {
	return strings.HasPrefix(lk, sysMetaPrefix) && len(lk) > len(sysMetaPrefix)
}
func isTransientSysMeta(lk string) bool {
	return strings.HasPrefix(lk, transientSysMetaPrefix)
}

// isArcaMeta: Arca's own keys, in the .data or a .meta, which no request
// sets and no response shows.
func isArcaMeta(lk string) bool {
	return strings.HasPrefix(lk, arcaMetaPrefix) || strings.HasPrefix(lk, arcaTransientPrefix)
}

func quoteEtag(e string) string { return `"` + e + `"` }

func unquoteEtag(e string) string {
	e = strings.TrimSpace(e)
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}
