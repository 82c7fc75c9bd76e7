"""Arca in the Swift proxy pipeline: key ids for object writes.

The rules live in Go (arca-swift-filter with [pipeline] socket set); this
middleware only asks. For every request it removes the client's copies of
X-Arca-Key-Id (WSGI folds every spelling, any case, '_' or '-', repeated,
into HTTP_X_ARCA_KEY_ID). For an object PUT it first lets Swift authorize
the request (as Swift's own middleware do when they must decide early), so
that a request Swift refuses never makes a key be resolved, then asks the
decision socket which key id, if any, the write carries. The socket
unreachable answers 503 to object PUTs; nothing else is affected.

It belongs right of every middleware that builds subrequests (copy, slo,
dlo, versioned_writes, symlink), before the final proxy-logging, as
Swift's own keymaster/encryption do: their subrequests then pass here too.

    [filter:arca]
    paste.filter_factory = arca_swift.middleware:filter_factory
    socket = /run/arca/decision.sock
    timeout = 10
"""

import json
import socket

from swift.common.swob import Request, Response
from swift.common.utils import get_logger, split_path
from swift.proxy.controllers.base import get_container_info

PROTOCOL = 1
KEY_ID_ENV = 'HTTP_X_ARCA_KEY_ID'


class Unavailable(Exception):
    pass


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
                answer = conn[1].readline(65536)
                if not answer.endswith(b'\n'):
                    raise IOError('connection closed')
                answer = json.loads(answer)
            except Exception as e:
                self._close(conn)
                if reused:
                    continue
                raise Unavailable(str(e))
            if answer.get('v') != PROTOCOL or 'error' in answer:
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


class ArcaMiddleware(object):
    def __init__(self, app, conf):
        self.app = app
        self.logger = get_logger(conf, log_route='arca')
        self.client = DecisionClient(
            conf.get('socket', '/run/arca/decision.sock'),
            float(conf.get('timeout', 10)), int(conf.get('pool_size', 64)))

    def __call__(self, env, start_response):
        env.pop(KEY_ID_ENV, None)
        if env.get('REQUEST_METHOD') != 'PUT':
            return self.app(env, start_response)
        try:
            split_path(env.get('PATH_INFO', ''), 4, 4, True)
        except ValueError:
            return self.app(env, start_response)  # not an object
        req = Request(env)
        if 'swift.authorize' in env:
            info = get_container_info(env, self.app, swift_source='ARCA')
            req.acl = info.get('write_acl')
            denied = env['swift.authorize'](req)
            if denied:
                return denied(env, start_response)
        ask = {'v': PROTOCOL, 'method': 'PUT', 'path': env['PATH_INFO']}
        if env.get('HTTP_X_PROJECT_ID'):
            ask['project_id'] = env['HTTP_X_PROJECT_ID']
        try:
            answer = self.client.ask(ask)
        except Unavailable as e:
            self.logger.error('arca: decision socket unavailable: %s', e)
            return self._refuse(503, 'The key service is unavailable; '
                                'retry later.')(env, start_response)
        if answer.get('status'):
            return self._refuse(answer['status'], answer.get('message', ''))(
                env, start_response)
        if answer.get('key_id'):
            env[KEY_ID_ENV] = answer['key_id']
        return self.app(env, start_response)

    @staticmethod
    def _refuse(status, message):
        resp = Response(status=status, content_type='text/plain',
                        charset='UTF-8')
        resp.body = ('%s: %s\n' % (resp.status.split(' ', 1)[1],
                                   message)).encode('utf-8')
        return resp


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)

    def arca_filter(app):
        return ArcaMiddleware(app, conf)
    return arca_filter
