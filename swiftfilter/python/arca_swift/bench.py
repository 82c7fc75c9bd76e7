"""The arca middleware with a CPU meter, for tools/bench-pipeline.sh only.

Never in a production pipeline: it answers GET /arca-bench-cpu to anyone
with its counters, and its meter assumes one request at a time.

    [filter:arca]
    paste.filter_factory = arca_swift.bench:filter_factory
    socket = ...

It is the middleware of arca_swift.middleware, unchanged, with its own
CPU per request counted: the calling thread's CPU time (user and system,
CLOCK_THREAD_CPUTIME_ID) from the moment the request enters it until it
returns, less the time spent in the rest of the pipeline below it (the
proxy server's work for the request itself and for the container info
the middleware asks for, which the proxy would otherwise ask for itself
and then finds cached in the request). What is left is the middleware's
own: stripping the header, splitting the path, the second
swift.authorize, the JSON line to the decision socket and back. The
socket's wait costs no CPU; under eventlet another request's greenthread
could run during it, so the meter is exact only when requests come one at
a time, as the benchmark sends them.

GET /arca-bench-cpu answers {"pid": ..., "ops": {"PUT": [count, ns],
...}}: totals since the start, by request method.
"""

import json
import os
import time

from arca_swift.middleware import ArcaMiddleware

BENCH_PATH = '/arca-bench-cpu'


class _Below(object):
    """The rest of the pipeline, its CPU time subtracted from the meter's."""

    def __init__(self, app, meter):
        self.app, self.meter = app, meter

    def __call__(self, env, start_response):
        t0 = time.thread_time_ns()
        try:
            return self.app(env, start_response)
        finally:
            self.meter.below += time.thread_time_ns() - t0

    def __getattr__(self, name):
        # get_container_info reads the proxy app's attributes through it
        return getattr(self.app, name)


class BenchArcaMiddleware(ArcaMiddleware):
    def __init__(self, app, conf):
        super(BenchArcaMiddleware, self).__init__(_Below(app, self), conf)
        self.below = 0
        self.ops = {}
        self.logger.warning('arca: the bench CPU meter is on '
                            '(arca_swift.bench): not for production')

    def __call__(self, env, start_response):
        if env.get('PATH_INFO') == BENCH_PATH:
            return self._report(env, start_response)
        self.below = 0
        t0 = time.thread_time_ns()
        out = super(BenchArcaMiddleware, self).__call__(env, start_response)
        own = time.thread_time_ns() - t0 - self.below
        op = self.ops.setdefault(env.get('REQUEST_METHOD', ''), [0, 0])
        op[0] += 1
        op[1] += own
        return out

    def _report(self, env, start_response):
        body = json.dumps({'pid': os.getpid(), 'ops': self.ops}).encode()
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]


def filter_factory(global_conf, **local_conf):
    conf = dict(global_conf, **local_conf)

    def arca_filter(app):
        return BenchArcaMiddleware(app, conf)
    return arca_filter
