"""Arca in the Swift proxy pipeline: key ids for object writes.

The rules live in Go (arca-swift-filter with [pipeline] socket set); this
middleware only asks. For every request it removes the client's copies of
X-Arca-Key-Id (WSGI folds every spelling, any case, '_' or '-', repeated,
into HTTP_X_ARCA_KEY_ID). For an object PUT it first lets Swift authorize
the request (as Swift's own middleware do when they must decide early), so
that a request Swift refuses never makes a key be resolved, then asks the
decision socket which key id, if any, the write carries. The socket
unreachable answers 503 to object PUTs.

A key id the socket says may be kept (reuse_ms: what is left of the
filter's own cached entry, which the key service's destroy guard bounds)
is given to the account's next writes by tokens of the same project
without asking, and without the early authorize: no key is resolved for
them, and Swift authorizes each as always. So a write goes on while the
socket is down only if its key id was kept, for no longer than the
filter itself would have kept it.

Container listings reach it with each object's ETag sealed (objcrypt's
"Listing ETags"): for a container GET answered with a JSON or XML listing
it sends the listing's tokens to the socket in one request (more when one
would weigh over MAX_QUESTION) and writes the values it gets back in their
place; the keys stay on the Go side. A
listing with tokens answers 503 when the socket cannot open them (fail
closed, as the reverse proxy does); one without passes untouched.

It belongs right of every middleware that builds subrequests (copy, slo,
dlo, versioned_writes, symlink), before the final proxy-logging, as
Swift's own keymaster/encryption do: their subrequests then pass here too.

    [filter:arca]
    paste.filter_factory = arca_swift.middleware:filter_factory
    socket = /run/arca/decision.sock
    timeout = 10
    # key ids kept per worker (account, project), each for what the
    # decision socket allows
    kept_key_ids = 4096
"""

import html
import json
import re
import socket
import time

from swift.common.swob import Request, Response, wsgi_to_str
from swift.common.utils import get_logger, split_path
from swift.proxy.controllers.base import get_cache_key, get_container_info

PROTOCOL = 1
KEY_ID_ENV = 'HTTP_X_ARCA_KEY_ID'
# An open_listing answer holds a value per token of a listing page.
MAX_ANSWER = 16 << 20
# What a key id may be (the Go side checks the same before it answers).
KEY_ID = re.compile(r'\A[A-Za-z0-9_-]{1,64}\Z')
TOKEN_PREFIX = 'arca1.'
# The hash parameters that hold sealed values, besides the ETag itself.
SEALED_PARAMS = ('slo_etag', 'symlink_target_etag')
# Top-level fields of a JSON entry that may hold one (SLO and symlink move
# the parameters there; they sit left of this middleware, but a pipeline
# may differ), and the field each was sealed for.
SEALED_FIELDS = {'slo_etag': 'slo_etag', 'symlink_etag': 'symlink_target_etag'}
XML_OBJECT = re.compile(br'<object>.*?</object>', re.S)


class Unavailable(Exception):
    pass


class KeptKeyIDs(object):
    """Key ids the decision socket let this process keep, per (account,
    project_id), each until its own monotonic deadline; at most size of
    them (when full, the expired go, then all; 0 keeps none)."""

    def __init__(self, size):
        self.size, self.entries = size, {}

    def get(self, account, project):
        entry = self.entries.get((account, project))
        if entry is None:
            return None
        if time.monotonic() >= entry[0]:
            self.entries.pop((account, project), None)
            return None
        return entry[1]

    def keep(self, account, project, key_id, until):
        if self.size <= 0:
            return
        if len(self.entries) >= self.size:
            now = time.monotonic()
            for k in [k for k, e in self.entries.items() if e[0] <= now]:
                del self.entries[k]
            if len(self.entries) >= self.size:
                self.entries.clear()
        self.entries[(account, project)] = (until, key_id)


class DecisionClient(object):
    """One line of JSON each way on pooled Unix connections (green under
    eventlet, which monkey-patches socket in Swift's proxy)."""

    def __init__(self, path, timeout, pool_size):
        self.path, self.timeout, self.pool_size = path, timeout, pool_size
        self.idle = []

    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except Exception:
            s.close()
            raise
        return s, s.makefile('rb')

    def ask(self, request):
        line = (json.dumps(request) + '\n').encode('ascii')
        # A pooled connection may have been closed while idle: one retry on
        # a fresh one (a decision is a lookup, safe to repeat).
        for attempt in (0, 1):
            reused = bool(self.idle) and attempt == 0
            try:
                conn = self.idle.pop() if reused else self._connect()
            except Exception as e:
                raise Unavailable('connect %s: %s' % (self.path, e))
            try:
                conn[0].sendall(line)
                answer = conn[1].readline(MAX_ANSWER)
                if not answer.endswith(b'\n'):
                    raise IOError('connection closed')
                answer = json.loads(answer)
            except Exception as e:
                self._close(conn)
                if reused:
                    continue
                raise Unavailable(str(e))
            if not isinstance(answer, dict) or \
                    answer.get('v') != PROTOCOL or 'error' in answer:
                self._close(conn)
                raise Unavailable('decision socket: %r' % (answer,))
            if len(self.idle) < self.pool_size:
                self.idle.append(conn)
            else:
                self._close(conn)
            return answer
        raise Unavailable('no connection')

    @staticmethod
    def _close(conn):
        for c in (conn[1], conn[0]):
            try:
                c.close()
            except Exception:
                pass


# The most an open_listing question may weigh, well under the Go side's
# 32 MiB line: a page of 10,000 names of 1,024 characters, each escaped to
# up to 12 bytes (json.dumps writes a control or non-BMP character as
# \\uXXXX, a pair of them), repeated for each sealed value, would not fit
# in one.
MAX_QUESTION = 8 << 20


def question_chunks(items):
    """The listing's items in runs whose question stays under MAX_QUESTION
    (each item's weight bounded from above, without encoding it)."""
    chunk, size = [], 0
    for item in items:
        weight = 12 * (len(item['name']) + len(item['token'])) + 64
        if chunk and size + weight > MAX_QUESTION:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += weight
    if chunk:
        yield chunk


def _refusal(status):
    """Whether the socket's status is one a refusal may carry."""
    return isinstance(status, int) and not isinstance(status, bool) and \
        400 <= status <= 599


class ArcaMiddleware(object):
    def __init__(self, app, conf):
        self.app = app
        self.logger = get_logger(conf, log_route='arca')
        self.client = DecisionClient(
            conf.get('socket', '/run/arca/decision.sock'),
            float(conf.get('timeout', 10)), int(conf.get('pool_size', 64)))
        self.kept = KeptKeyIDs(int(conf.get('kept_key_ids', 4096)))
        self.warned_order = False

    def __call__(self, env, start_response):
        env.pop(KEY_ID_ENV, None)
        if env.get('REQUEST_METHOD') == 'GET':
            try:
                _, acct, cont, obj = split_path(
                    env.get('PATH_INFO', ''), 3, 4, True)
            except ValueError:
                return self.app(env, start_response)
            if obj:
                return self.app(env, start_response)
            return self._listing(env, start_response, acct, cont)
        if env.get('REQUEST_METHOD') != 'PUT':
            return self.app(env, start_response)
        try:
            _, acct, cont, _ = split_path(env.get('PATH_INFO', ''), 4, 4, True)
        except ValueError:
            return self.app(env, start_response)  # not an object
        # The caller's project only as keystonemiddleware's authtoken
        # found it: authtoken replaces the client's identity headers, and
        # keystoneauth, right of it, sets swift.authorize (an environment
        # key no client can send; Swift's subrequests carry it with
        # X-Project-Id, not authtoken's token data). Without it this
        # middleware sits left of them (or there are none), and
        # X-Project-Id is whatever the client sent: the write is asked
        # about as an anonymous one, which gets no key id.
        project = None
        if 'swift.authorize' in env:
            project = env.get('HTTP_X_PROJECT_ID')
        elif env.get('HTTP_X_PROJECT_ID') and not self.warned_order:
            self.warned_order = True
            self.logger.warning(
                'arca: X-Project-Id without swift.authorize: this '
                'middleware must sit right of authtoken and keystoneauth; '
                'writes get no key id from here until it does')
        if project:
            kept = self.kept.get(acct, project)
            if kept:
                env[KEY_ID_ENV] = kept
                return self.app(env, start_response)
        req = Request(env)
        if 'swift.authorize' in env:
            req.acl = self._write_acl(env, acct, cont)
            denied = env['swift.authorize'](req)
            if denied:
                return denied(env, start_response)
        ask = {'v': PROTOCOL, 'method': 'PUT', 'path': env['PATH_INFO']}
        if project:
            ask['project_id'] = project
        # The deadline counts from before the question: the filter's
        # entry was at least this old when it answered.
        asked = time.monotonic()
        try:
            answer = self.client.ask(ask)
        except Unavailable as e:
            self.logger.error('arca: decision socket unavailable: %s', e)
            return self._refuse(503, 'The key service is unavailable; '
                                'retry later.')(env, start_response)
        status, key_id = answer.get('status'), answer.get('key_id')
        if status or key_id:
            if not (_refusal(status) or (not status and isinstance(
                    key_id, str) and KEY_ID.match(key_id))):
                self.logger.error('arca: decision socket answered %r',
                                  answer)
                return self._refuse(503, 'The key service is unavailable; '
                                    'retry later.')(env, start_response)
        if status:
            return self._refuse(status, str(answer.get('message', '')))(
                env, start_response)
        if key_id:
            env[KEY_ID_ENV] = key_id
            reuse = answer.get('reuse_ms')
            if project and answer.get('account') == acct and \
                    isinstance(reuse, int) and reuse > 0:
                self.kept.keep(acct, project, key_id, asked + reuse / 1000.0)
        return self.app(env, start_response)

    def _write_acl(self, env, account, container):
        """The container's write ACL: read where the request's info cache
        holds it (a middleware left of this one, or the proxy, asked
        already), else from get_container_info. get_container_info would
        deep-copy the cached info on every call, the larger part of this
        middleware's CPU on a PUT; the ACL is only read here."""
        info = env.get('swift.infocache', {}).get(
            get_cache_key(wsgi_to_str(account), wsgi_to_str(container)))
        if not isinstance(info, dict):
            info = get_container_info(env, self.app, swift_source='ARCA')
        return info.get('write_acl')

    def _listing(self, env, start_response, account, container):
        resp = Request(env).get_response(self.app)
        ctype = resp.headers.get('Content-Type', '').split(';')[0]
        ctype = ctype.strip().lower()
        if resp.status_int != 200 or resp.headers.get('Content-Encoding'):
            return resp(env, start_response)
        if ctype == 'application/json':
            listing = JSONListing(resp.body)
        elif ctype in ('application/xml', 'text/xml'):
            listing = XMLListing(resp.body)
        else:
            return resp(env, start_response)
        if not listing.items:
            return resp(env, start_response)
        values = []
        for chunk in question_chunks(listing.items):
            try:
                answer = self.client.ask({
                    'v': PROTOCOL, 'op': 'open_listing', 'account': account,
                    'container': container, 'items': chunk})
            except Unavailable as e:
                self.logger.error('arca: decision socket unavailable: %s', e)
                answer = {'status': 503, 'message': 'The key service is '
                          'unavailable; retry later.'}
            part = answer.get('values')
            if answer.get('status') or not isinstance(part, list) or \
                    len(part) != len(chunk):
                status = answer.get('status')
                return self._refuse(status if _refusal(status) else 503, str(
                    answer.get('message',
                               'The listing could not be opened.')))(
                    env, start_response)
            values.extend(part)
        resp.body = listing.opened(values)
        return resp(env, start_response)

    @staticmethod
    def _refuse(status, message):
        resp = Response(status=status, content_type='text/plain',
                        charset='UTF-8')
        resp.body = ('%s: %s\n' % (resp.status.split(' ', 1)[1],
                                   message)).encode('utf-8')
        return resp


def hash_tokens(value):
    """The (field, token) of each sealed value of a listing hash, which is
    'etag *(";" param)' below SLO and symlink."""
    parts = value.split(';')
    out = []
    if parts[0].strip().startswith(TOKEN_PREFIX):
        out.append(('etag', parts[0].strip()))
    for part in parts[1:]:
        key, eq, val = part.partition('=')
        key, val = key.strip(), val.strip()
        if eq and key in SEALED_PARAMS and val.startswith(TOKEN_PREFIX):
            out.append((key, val))
    return out


class JSONListing(object):
    """A JSON listing page's sealed values (items, for open_listing) and
    where each stands."""

    def __init__(self, body):
        self.body, self.items, self.spots = body, [], []
        if TOKEN_PREFIX.encode('ascii') not in body:
            return
        try:
            self.entries = json.loads(body)
        except ValueError:
            return
        if not isinstance(self.entries, list):
            return
        for i, entry in enumerate(self.entries):
            if isinstance(entry, dict) and isinstance(entry.get('name'), str):
                self._collect(i, entry)

    def _collect(self, i, entry):
        found = []
        if isinstance(entry.get('hash'), str):
            found = [('hash', f, t) for f, t in hash_tokens(entry['hash'])]
        for key, field in sorted(SEALED_FIELDS.items()):
            tok = entry.get(key)
            if not isinstance(tok, str):
                continue
            if key == 'slo_etag' and len(tok) > 1 and tok[0] == tok[-1] == '"':
                tok = tok[1:-1]  # SLO shows it quoted
            if tok.startswith(TOKEN_PREFIX):
                found.append((key, field, tok))
        for key, field, tok in found:
            self.items.append(
                {'name': entry['name'], 'field': field, 'token': tok})
            self.spots.append((i, key, tok))

    def opened(self, values):
        changed = False
        for (i, key, tok), value in zip(self.spots, values):
            if isinstance(value, str):
                entry = self.entries[i]
                entry[key] = entry[key].replace(tok, value, 1)
                changed = True
        if not changed:
            return self.body
        # as Swift's container server writes it
        return json.dumps(self.entries).encode('ascii')


class XMLListing(object):
    """An XML listing page's sealed values: each <object>'s hash."""

    def __init__(self, body):
        self.body, self.items, self.spots = body, [], []
        if TOKEN_PREFIX.encode('ascii') not in body:
            return
        for m in XML_OBJECT.finditer(body):
            name = re.search(br'<name>(.*?)</name>', m.group(0), re.S)
            hsh = re.search(br'<hash>(.*?)</hash>', m.group(0), re.S)
            if not name or not hsh:
                continue
            try:
                name = html.unescape(name.group(1).decode('utf-8'))
                text = html.unescape(hsh.group(1).decode('utf-8'))
            except UnicodeDecodeError:
                continue
            start = m.start() + hsh.start(1)
            for field, tok in hash_tokens(text):
                self.items.append({'name': name, 'field': field, 'token': tok})
                self.spots.append((start, start + len(hsh.group(1)), tok))

    def opened(self, values):
        out, done = [], 0
        for (start, end, tok), value in zip(self.spots, values):
            if not isinstance(value, str):
                continue
            if start >= done:  # the hash's first value opened
                out.append(self.body[done:start])
                text = self.body[start:end]
            else:  # another of the same hash: rewrite what was rewritten
                text = out.pop()
            text = text.replace(tok.encode('ascii'), html.escape(
                value, quote=False).encode('utf-8'), 1)
            out.append(text)
            done = end
        out.append(self.body[done:])
        return b''.join(out)


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)

    def arca_filter(app):
        return ArcaMiddleware(app, conf)
    return arca_filter
