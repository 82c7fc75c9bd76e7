package objectserver

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"opendev.org/x/arca/objectserver/diskfile"
)

const (
	expiringObjectsAccount = ".expiring_objects"
	expirerDivisor         = 86400
	emptyEtag              = "d41d8cd98f00b204e9800998ecf8427e"
)

// containerTarget is one container server to tell.
type containerTarget struct{ host, device string }

// containerUpdate tells the container servers named in the request about
// the change, waiting at most container_update_timeout; updates that fail
// (or are still running then and fail later) go to async_pending for
// swift-object-updater.
func (s *Server) containerUpdate(req *request, op string, upd map[string]string) {
	s.containerUpdateSealed(req, op, upd, nil)
}

// containerUpdateSealed is containerUpdate for an update whose ETag is
// sealed first (listingetag.go): seal runs on upd only when there is a
// container server to tell, before anything is sent, so that a request
// without X-Container-Host (the proxy names container servers to only some
// of an object's nodes when it has more of those than container replicas)
// derives no listing key and seals nothing; when seal reports false,
// nothing is sent (seal has logged why).
func (s *Server) containerUpdateSealed(req *request, op string, upd map[string]string, seal func(map[string]string) bool) {
	h := req.r.Header
	hosts := splitList(h.Get("X-Container-Host"))
	devices := splitList(h.Get("X-Container-Device"))
	part := strings.TrimSpace(h.Get("X-Container-Partition"))
	if len(hosts) != len(devices) {
		req.log.Error().Str("hosts", h.Get("X-Container-Host")).Str("devices", h.Get("X-Container-Device")).
			Msg("container update failed: different numbers of hosts and devices in request")
		return
	}
	if part == "" || len(hosts) == 0 {
		return
	}
	contPath := ""
	if q := h.Get("X-Backend-Quoted-Container-Path"); q != "" {
		if p, err := url.PathUnescape(q); err == nil {
			contPath = p
		}
	} else {
		contPath = h.Get("X-Backend-Container-Path")
	}
	if contPath != "" {
		if a, c, ok := strings.Cut(contPath, "/"); !ok || a == "" || c == "" || strings.Contains(c, "/") {
			req.log.Error().Str("path", contPath).Msg("invalid X-Backend-Container-Path, updating the root container")
			contPath = ""
		}
	}
	if seal != nil && !seal(upd) {
		return
	}
	s.addCommonUpdateHeaders(req, upd)
	upd["X-Backend-Storage-Policy-Index"] = strconv.Itoa(req.policy)
	targets := make([]containerTarget, len(hosts))
	for i := range hosts {
		targets[i] = containerTarget{hosts[i], devices[i]}
	}
	s.sendUpdates(req, op, req.account, req.container, req.object, contPath, part, targets, upd)
}

func (s *Server) addCommonUpdateHeaders(req *request, upd map[string]string) {
	txn := req.r.Header.Get("X-Trans-Id")
	if txn == "" {
		txn = "-"
	}
	upd["X-Trans-Id"] = txn
	upd["Referer"] = req.r.Method + " " + "http://" + req.r.Host + req.r.URL.EscapedPath()
	upd["User-Agent"] = s.userAgnt
}

// sendUpdates runs the updates concurrently and waits up to the timeout.
func (s *Server) sendUpdates(req *request, op, account, container, obj, contPath, part string, targets []containerTarget, upd map[string]string) {
	done := make(chan struct{}, len(targets))
	for _, t := range targets {
		headers := make(map[string]string, len(upd))
		for k, v := range upd {
			headers[k] = v
		}
		s.updates.Add(1)
		go func(t containerTarget) {
			defer s.updates.Done()
			defer func() { done <- struct{}{} }()
			s.asyncUpdate(req, op, account, container, obj, contPath, t, part, headers)
		}(t)
	}
	timer := time.NewTimer(s.cfg.ContainerUpdateTimeout)
	defer timer.Stop()
	for range targets {
		select {
		case <-done:
		case <-timer.C:
			return
		}
	}
}

// asyncUpdate sends one update, or saves it in async_pending.
func (s *Server) asyncUpdate(req *request, op, account, container, obj, contPath string, t containerTarget, part string, headers map[string]string) {
	full := "/" + account + "/" + container + "/" + obj
	if contPath != "" {
		full = "/" + contPath + "/" + obj
	}
	if t.host != "" && t.device != "" && part != "" {
		err := s.sendUpdate(op, t, part, full, headers)
		if err == nil {
			return
		}
		req.log.Error().Err(err).Str("host", t.host).Str("device", t.device).
			Msg("container update failed (saving for async update later)")
	}
	tsv := headers["X-Meta-Timestamp"]
	if tsv == "" {
		tsv = headers["X-Timestamp"]
	}
	ts, _ := diskfile.ParseTimestamp(tsv)
	lower := make(map[string]string, len(headers))
	for k, v := range headers {
		lower[strings.ToLower(k)] = v
	}
	err := s.disk.WriteAsyncPending(req.device, req.policy, diskfile.AsyncUpdate{
		Op: op, Account: account, Container: container, Object: obj, Headers: lower, ContainerPath: contPath,
	}, ts)
	if err != nil {
		req.log.Error().Err(err).Msg("writing async_pending failed; the container listing will be stale")
	}
}

func (s *Server) sendUpdate(op string, t containerTarget, part, fullPath string, headers map[string]string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ConnTimeout+s.cfg.NodeTimeout)
	defer cancel()
	u := "http://" + t.host + "/" + url.PathEscape(t.device) + "/" + url.PathEscape(part) + quotePath(fullPath)
	rq, err := http.NewRequestWithContext(ctx, op, u, http.NoBody)
	if err != nil {
		return err
	}
	for k, v := range headers {
		rq.Header.Set(k, v)
	}
	resp, err := s.client.Do(rq)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("container server answered %d", resp.StatusCode)
	}
	return nil
}

// quotePath quotes each segment as Swift's quote() does (keeping '/').
func quotePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func splitList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// deleteAtUpdate adds (PUT) or removes (DELETE) the object's entry in the
// expirer queue, as Swift's delete_at_update.
func (s *Server) deleteAtUpdate(req *request, op string, deleteAt int64) {
	h := req.r.Header
	if isTrue(h.Get("X-Backend-Replication")) {
		return
	}
	deleteAt = min(max(deleteAt, 0), 9999999999)
	headers := map[string]string{"X-Timestamp": req.ts.Internal()}
	s.addCommonUpdateHeaders(req, headers)
	headers["X-Backend-Storage-Policy-Index"] = "0"
	var targets []containerTarget
	var part, container string
	if op != "DELETE" {
		hostsHdr, ok := h["X-Delete-At-Host"]
		if !ok {
			return // enough other object servers will do it
		}
		container = strings.TrimSpace(h.Get("X-Delete-At-Container"))
		if container == "" {
			container = s.expirerContainer(deleteAt, req.account, req.container, req.object)
		}
		part = strings.TrimSpace(h.Get("X-Delete-At-Partition"))
		hosts := splitList(strings.Join(hostsHdr, ","))
		devs := splitList(h.Get("X-Delete-At-Device"))
		for i := 0; i < len(hosts) && i < len(devs); i++ {
			targets = append(targets, containerTarget{hosts[i], devs[i]})
		}
		headers["X-Size"] = "0"
		headers["X-Content-Type"] = "text/plain"
		headers["X-Etag"] = emptyEtag
	} else {
		if v := h.Get("X-Backend-Clean-Expiring-Object-Queue"); v != "" && !isTrue(v) {
			return
		}
		container = s.expirerContainer(deleteAt, req.account, req.container, req.object)
		targets = []containerTarget{{}}
	}
	name := fmt.Sprintf("%010d-%s/%s/%s", deleteAt, req.account, req.container, req.object)
	s.sendUpdates(req, op, expiringObjectsAccount, container, name, "", part, targets, headers)
}

// expirerContainer is Swift's get_expirer_container.
func (s *Server) expirerContainer(deleteAt int64, account, container, obj string) string {
	hash := s.swift.HashPath(account, container, obj)
	n, _ := new(big.Int).SetString(hash, 16)
	shard := new(big.Int).Mod(n, big.NewInt(100)).Int64()
	v := deleteAt/expirerDivisor*expirerDivisor - shard
	v = min(max(v, 0), 9999999999)
	return fmt.Sprintf("%010d", v)
}
