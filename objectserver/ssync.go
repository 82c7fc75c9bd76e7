package objectserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"opendev.org/x/arca/objectserver/diskfile"
)

// SSYNC receiver (Swift 2.30's obj/ssync_receiver.py), so that Swift's
// reconstructor can rebuild fragment archives onto Arca nodes: the
// sender offers "<hash> <ts>[ m:..,t:..,durable:..]" lines (missing
// check), the receiver answers the hashes it wants ("d" data, "m"
// metadata), then the sender sends PUT, POST and DELETE subrequests
// (updates), which run through this server's own handlers: a rebuilt
// archive is encrypted like any PUT. The exchange is one request whose
// answer is written while its body is still read (full duplex).

// maxSsyncLine bounds a protocol or header line.
const maxSsyncLine = 64 << 10

func (s *Server) handleSsync(req *request) error {
	if _, err := s.disk.DevicePath(req.device); err != nil {
		return diskFailed(err)
	}
	// As Swift's receiver: at most replication_concurrency exchanges at
	// once, the next one answered 503 (the sender tries later), so that
	// peers cannot hold every connection and disk of the node.
	if s.ssyncSlots != nil {
		select {
		case s.ssyncSlots <- struct{}{}:
			defer func() { <-s.ssyncSlots }()
		default:
			return answer(http.StatusServiceUnavailable, "")
		}
	}
	fragIndex := -1
	if v := req.r.Header.Get("X-Backend-Ssync-Frag-Index"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return answer(http.StatusBadRequest, fmt.Sprintf("Invalid X-Backend-Ssync-Frag-Index %q", v))
		}
		fragIndex = n
	}
	rc := http.NewResponseController(req.w)
	if err := rc.EnableFullDuplex(); err != nil {
		return fmt.Errorf("objectserver: ssync: %w", err)
	}
	// As Swift's receiver: swob's default type, and the header that tells
	// the sender it may send non-durable fragments (X-Backend-No-Commit).
	req.w.Header().Set("Content-Type", swobHTML)
	req.w.Header().Set("X-Backend-Accept-No-Commit", "True")
	req.w.WriteHeader(http.StatusOK)
	write := func(s string) {
		_, _ = io.WriteString(req.w, s)
		_ = rc.Flush()
	}
	write("\r\n")
	br := bufio.NewReaderSize(&deadlineReader{r: req.r.Body, rc: rc, timeout: s.cfg.ClientTimeout}, 64<<10)
	x := &ssyncExchange{s: s, req: req, br: br, fragIndex: fragIndex}
	if err := x.missingCheck(write); err != nil {
		if errors.Is(err, errSsyncGone) {
			return nil // the sender went away: nothing to answer, as Swift
		}
		write(ssyncError(err))
		return nil
	}
	if err := x.updates(); err != nil {
		write(ssyncError(err))
		return nil
	}
	write(":UPDATES: START\r\n:UPDATES: END\r\n")
	return nil
}

// ssyncError is the ":ERROR: <code> '<message>'" line a failed exchange
// ends with.
func ssyncError(err error) string {
	code := 0
	var se *swiftError
	if errors.As(err, &se) {
		code = se.status
	}
	return fmt.Sprintf(":ERROR: %d %s\n", code, strconv.QuoteToASCII(err.Error()))
}

// errSsyncGone: the sender closed before the exchange began.
var errSsyncGone = errors.New("objectserver: ssync sender disconnected")

type ssyncExchange struct {
	s         *Server
	req       *request
	br        *bufio.Reader
	fragIndex int
}

func (x *ssyncExchange) readLine(context string) (string, error) {
	line, err := x.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxSsyncLine {
		return "", fmt.Errorf("ssync %s: line too long", context)
	}
	if err != nil && len(line) == 0 {
		return "", fmt.Errorf("ssync %s: %w", context, err)
	}
	return string(line), nil
}

// missingCheck reads the offered objects and answers those wanted.
func (x *ssyncExchange) missingCheck(write func(string)) error {
	line, err := x.readLine("missing_check start")
	if errors.Is(err, io.EOF) {
		return errSsyncGone
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != ":MISSING_CHECK: START" {
		return fmt.Errorf("looking for :MISSING_CHECK: START got %.1024q", line)
	}
	var wanted []string
	for {
		line, err := x.readLine("missing_check line")
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) == ":MISSING_CHECK: END" {
			break
		}
		remote, err := decodeMissing(line)
		if err != nil {
			return err
		}
		local, err := x.checkLocal(remote, true)
		if err != nil {
			return err
		}
		if w := encodeWanted(remote, local); w != "" {
			wanted = append(wanted, w)
		}
	}
	var b strings.Builder
	b.WriteString(":MISSING_CHECK: START\r\n")
	if len(wanted) > 0 {
		b.WriteString(strings.Join(wanted, "\r\n"))
	}
	b.WriteString("\r\n:MISSING_CHECK: END\r\n")
	write(b.String())
	return nil
}

// offer is one missing-check line: what the sender has of an object.
type offer struct {
	hash                  string
	tsData, tsMeta, tsCty diskfile.Timestamp
	durable               bool
}

// decodeMissing parses "<hash> <ts_data>[ m:<hex>,t:<hex>,durable:<bool>]"
// (Swift's decode_missing: m and t are deltas from ts_data).
func decodeMissing(line string) (offer, error) {
	parts := strings.Fields(line)
	if len(parts) < 2 {
		return offer{}, fmt.Errorf("bad missing_check line %.200q", line)
	}
	h, err1 := url.PathUnescape(parts[0])
	t, err2 := url.PathUnescape(parts[1])
	ts, err3 := diskfile.ParseTimestamp(t)
	if err := errors.Join(err1, err2, err3); err != nil {
		return offer{}, fmt.Errorf("bad missing_check line %.200q: %w", line, err)
	}
	o := offer{hash: h, tsData: ts, tsMeta: ts, tsCty: ts, durable: true}
	if len(parts) > 2 {
		extra, _ := url.PathUnescape(parts[2])
		for item := range strings.SplitSeq(extra, ",") {
			k, v, ok := strings.Cut(item, ":")
			if !ok {
				continue
			}
			switch k {
			case "m", "t":
				d, err := strconv.ParseInt(v, 16, 64)
				if err != nil {
					return offer{}, fmt.Errorf("bad missing_check delta %.50q", item)
				}
				if k == "m" {
					o.tsMeta = ts.WithDelta(d)
				} else {
					o.tsCty = ts.WithDelta(d)
				}
			case "durable":
				o.durable = isTrue(v)
			}
		}
	}
	return o, nil
}

// localState is what this node has of an offered object (zero: nothing).
type localState struct {
	has                   bool
	tsData, tsMeta, tsCty diskfile.Timestamp
	hasMeta               bool
}

// checkLocal is Swift's Receiver._check_local: the local object's
// timestamps; a local non-durable fragment at the offered timestamp is
// made durable when the sender's is durable (once), or counts as the
// offered data when it is not.
func (x *ssyncExchange) checkLocal(remote offer, makeDurable bool) (localState, error) {
	df, err := x.s.disk.ObjectFromHash(x.req.device, x.req.partition, x.req.policy, remote.hash)
	if err != nil {
		return localState{}, fmt.Errorf("bad missing_check hash %.40q: %w", remote.hash, err)
	}
	opts := &diskfile.ECOptions{}
	if x.fragIndex >= 0 {
		fi := x.fragIndex
		opts.FragIndex = &fi
	}
	df.EC = opts
	var st localState
	obj, err := df.Open()
	var nf *diskfile.NotFoundError
	switch {
	case err == nil:
		st = localState{has: true, hasMeta: true, tsData: obj.DataTS, tsMeta: obj.Timestamp(), tsCty: obj.ContentTypeTS}
		obj.Close()
	case errors.As(err, &nf) && nf.Tombstone != nil:
		st = localState{has: true, tsData: *nf.Tombstone}
	case errors.As(err, &nf):
	default:
		return localState{}, diskFailed(err)
	}
	if x.fragIndex < 0 || !df.IsEC() {
		return st, nil
	}
	durableTS, frags, err := df.FragmentState()
	if err != nil {
		return localState{}, diskFailed(err)
	}
	if (durableTS == nil || durableTS.Compare(remote.tsData) < 0) && frags.Has(remote.tsData, x.fragIndex) {
		if remote.durable {
			if makeDurable && df.MakeDurable(remote.tsData, x.fragIndex) == nil {
				return x.checkLocal(remote, false)
			}
		} else {
			st.has, st.tsData = true, remote.tsData
		}
	}
	return st, nil
}

// encodeWanted is Swift's encode_wanted: "<hash> <d|m|dm>", or "" when
// nothing is wanted.
func encodeWanted(remote offer, local localState) string {
	var data, meta bool
	if local.has {
		data = remote.tsData.After(local.tsData)
		meta = local.hasMeta && (remote.tsMeta.After(local.tsMeta) ||
			(remote.tsCty.After(local.tsCty) && remote.tsCty.After(remote.tsData)))
	} else {
		data, meta = true, true
	}
	if !data && !meta {
		return ""
	}
	parts := ""
	if data {
		parts += "d"
	}
	if meta {
		parts += "m"
	}
	return url.PathEscape(remote.hash) + " " + parts
}

// updates runs the sender's subrequests through this server's handlers.
func (x *ssyncExchange) updates() error {
	line, err := x.readLine("updates start")
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != ":UPDATES: START" {
		return fmt.Errorf("looking for :UPDATES: START got %.1024q", line)
	}
	failures, successes := 0, 0
	for {
		line, err := x.readLine("updates line")
		if err != nil {
			return err
		}
		if strings.TrimSpace(line) == ":UPDATES: END" {
			break
		}
		code, err := x.subrequest(strings.TrimSpace(line))
		if err != nil {
			return err
		}
		if code/100 == 2 || code == http.StatusNotFound {
			successes++
		} else {
			x.req.log.Warn().Int("status", code).Str("line", line).Msg("ssync subrequest failed")
			failures++
		}
	}
	if failures > 0 {
		return answer(http.StatusInternalServerError, fmt.Sprintf("ERROR: With :UPDATES: %d failures to %d successes", failures, successes))
	}
	return nil
}

// subrequest reads one "<METHOD> <path>" subrequest with its headers (and
// a PUT's body of Content-Length bytes) and serves it.
func (x *ssyncExchange) subrequest(line string) (int, error) {
	method, path, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(path, "/") {
		return 0, fmt.Errorf("bad subrequest line %.200q", line)
	}
	h := http.Header{}
	var replHeaders []string
	length := int64(-1)
	for {
		hl, err := x.readLine("updates line")
		if err != nil {
			return 0, err
		}
		hl = strings.TrimSpace(hl)
		if hl == "" {
			break
		}
		k, v, ok := strings.Cut(hl, ":")
		if !ok {
			return 0, fmt.Errorf("bad subrequest header %.200q", hl)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		h.Set(k, v)
		if k != "etag" && k != "x-backend-no-commit" {
			replHeaders = append(replHeaders, k)
		}
		if k == "content-length" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("bad subrequest Content-Length %.50q", v)
			}
			length = n
		}
	}
	var body io.Reader = http.NoBody
	switch method {
	case http.MethodDelete, http.MethodPost:
		if length > 0 {
			return 0, fmt.Errorf("%s subrequest with content-length %s", method, path)
		}
	case http.MethodPut:
		if length < 0 {
			return 0, fmt.Errorf("no content-length sent for PUT %s", path)
		}
		body = io.LimitReader(x.br, length)
	default:
		return 0, fmt.Errorf("invalid subrequest method %.20s", method)
	}
	sub, err := http.NewRequestWithContext(context.WithValue(x.req.ctx, ssyncSubrequest{}, true), method, "/"+x.req.device+"/"+x.req.partition+path, body)
	if err != nil {
		return 0, fmt.Errorf("bad subrequest %.200q: %w", line, err)
	}
	sub.URL.RawPath = ""
	sub.Header = h
	sub.ContentLength = max(length, 0)
	sub.RemoteAddr = x.req.r.RemoteAddr
	sub.Header.Set("X-Backend-Storage-Policy-Index", strconv.Itoa(x.req.policy))
	sub.Header.Set("X-Backend-Replication", "True")
	if x.fragIndex >= 0 {
		sub.Header.Set("X-Backend-Ssync-Frag-Index", strconv.Itoa(x.fragIndex))
	}
	if len(replHeaders) > 0 {
		sub.Header.Set("X-Backend-Replication-Headers", strings.Join(replHeaders, " "))
	}
	rec := &subWriter{header: http.Header{}}
	x.s.ServeHTTP(rec, sub)
	// what the handler left of the body (a refused PUT), so that the next
	// line is a subrequest's
	if _, err := io.Copy(io.Discard, body); err != nil {
		return 0, fmt.Errorf("ssync updates content: %w", err)
	}
	return rec.code(), nil
}

// subWriter records a subrequest's status; its body is dropped.
type subWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *subWriter) Header() http.Header { return w.header }

func (w *subWriter) WriteHeader(code int) {
	if code >= 200 && w.status == 0 {
		w.status = code
	}
}

func (w *subWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.body.Len() < 4096 {
		w.body.Write(p)
	}
	return len(p), nil
}

func (w *subWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
