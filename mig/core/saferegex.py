"""User regular expressions (grep, VERIFYFILES) run in helper processes.

Python's ``re`` can take exponential time on patterns such as ``(a+)+$``
and never lets go of the GIL while it matches: run in the server, one such
pattern would freeze every client.  So user patterns run in a small pool of
``python3 -I -S -c`` helpers fed JSON lines over pipes (never pickle); a
helper that overruns its deadline is killed and replaced and the caller gets
PatternTooSlow.  Patterns and the input of one call have size caps, and a
helper also kills itself (SIGALRM) should the server die mid-match.
"""

import json
import math
import os
import select
import subprocess
import sys
import threading
import time

from mig.errors import ClientError, InvalidArgument, SystemFailure

MAX_PATTERN = 1000  # characters of one pattern
MAX_INPUT = 4 * 1024 * 1024  # characters of text one call may carry
DEFAULT_SECONDS = 2.0  # per call; the appliance's regex_seconds setting
DEFAULT_HELPERS = 4
HELPER_MEMORY = 1024 * 1024 * 1024  # address space of one helper

# The helper: one JSON request per line in, one JSON reply per line out.
# SIG_DFL SIGALRM ends it even inside a C-level match (no Python handler
# has to run), so an orphaned helper cannot spin forever.
_HELPER = r"""
import json, re, signal, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (%d, %d))
except (ImportError, ValueError, OSError):
    pass
signal.signal(signal.SIGALRM, signal.SIG_DFL)

def answer(req):
    if req["op"] == "search":
        search = re.compile(req["pattern"]).search
        return {"hits": [i for i, line in enumerate(req["lines"]) if search(line)]}
    for i, (pattern, line) in enumerate(req["pairs"]):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            return {"bad": i, "error": str(exc)}
        if not regex.match(line):
            return {"miss": i}
    return {"miss": None}

for raw in iter(sys.stdin.buffer.readline, b""):
    try:
        req = json.loads(raw)
        signal.alarm(req["alarm"])
        reply = answer(req)
    except re.error as exc:
        reply = {"error": str(exc)}
    except MemoryError:
        reply = {"error": "the pattern needs too much memory"}
    signal.alarm(0)
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
""" % (HELPER_MEMORY, HELPER_MEMORY)


class PatternTooSlow(ClientError):
    """A user pattern overran its time limit (its helper was killed)."""


class BadPattern(ClientError):
    """A user pattern that is not a valid Python regular expression."""


class _Helper:
    """One helper process and its pipes."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _HELPER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, close_fds=True)

    def exchange(self, payload, deadline):
        """Write one request; the reply, or PatternTooSlow at the deadline."""
        self.proc.stdin.write(payload)
        self.proc.stdin.flush()
        fd, chunks = self.proc.stdout.fileno(), []
        poller = select.poll()  # not select(): the server may hold fds above 1024
        poller.register(fd, select.POLLIN)
        while not chunks or not chunks[-1].endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise PatternTooSlow("the pattern took too long (more than %g s); "
                                     "simplify it" % _POOL.seconds)
            if poller.poll(max(1, int(left * 1000))):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise SystemFailure("the pattern helper stopped unexpectedly")
                chunks.append(chunk)
        return json.loads(b"".join(chunks))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class RegexPool:
    """At most ``size`` helpers, started on demand, reused while they behave."""

    def __init__(self, size=DEFAULT_HELPERS, seconds=DEFAULT_SECONDS):
        self.size, self.seconds = size, seconds
        self._idle, self._count = [], 0
        self._cond = threading.Condition()

    def _take(self):
        wait_until = time.monotonic() + self.seconds
        with self._cond:
            while not self._idle and self._count >= self.size:
                left = wait_until - time.monotonic()
                if left <= 0:
                    raise PatternTooSlow("all pattern helpers are busy; try again shortly")
                self._cond.wait(left)
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Helper()
        except OSError as exc:
            self._give(None, False)
            raise SystemFailure("cannot start a pattern helper: %s" % exc) from None

    def _give(self, helper, healthy):
        with self._cond:
            if healthy:
                self._idle.append(helper)
            else:
                self._count -= 1
            self._cond.notify()
        if helper is not None and not healthy:
            helper.kill()

    def call(self, request):
        """One request to a helper: its reply, or PatternTooSlow / SystemFailure."""
        request = dict(request, alarm=int(math.ceil(self.seconds)) + 2)
        payload = (json.dumps(request) + "\n").encode("ascii")
        helper = self._take()
        healthy = False
        try:
            reply = helper.exchange(payload, time.monotonic() + self.seconds)
            healthy = True
        except (OSError, ValueError) as exc:  # a dead helper or a torn reply
            raise SystemFailure("the pattern helper failed: %s" % exc) from None
        finally:
            self._give(helper, healthy)
        return reply

    def shutdown(self):
        """Stop the idle helpers (busy ones are stopped when they come back)."""
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for helper in idle:
            helper.kill()


_POOL = RegexPool()


def configure(seconds=None, helpers=None):
    """Set the per-call time limit and the number of helpers (from the Config)."""
    if seconds is not None:
        _POOL.seconds = max(0.1, float(seconds))
    if helpers is not None:
        _POOL.size = max(1, int(helpers))


def shutdown():
    _POOL.shutdown()


def check_pattern(pattern):
    """Refuse an over-long pattern before it is sent anywhere."""
    if len(pattern) > MAX_PATTERN:
        raise InvalidArgument("the pattern is %d characters long; at most %d are allowed"
                              % (len(pattern), MAX_PATTERN))


def _input_size(strings):
    size = sum(len(s) for s in strings)
    if size > MAX_INPUT:
        raise InvalidArgument("%d characters are more than the %d one pattern call may "
                              "search" % (size, MAX_INPUT))


def search_lines(pattern, lines):
    """The indexes of the lines pattern finds (re.search), searched by a helper."""
    check_pattern(pattern)
    _input_size(lines)
    reply = _POOL.call({"op": "search", "pattern": pattern, "lines": list(lines)})
    if "error" in reply:
        raise BadPattern("invalid pattern %r: %s (patterns are Python regular "
                         "expressions)" % (pattern, reply["error"]))
    return reply["hits"]


def first_mismatch(pairs):
    """For [(pattern, line)]: None when each pattern matches its line (re.match),
    else (index, None) for the first miss or (index, error) for a bad pattern."""
    for pattern, _line in pairs:
        check_pattern(pattern)
    _input_size([p for p, _ in pairs] + [line for _, line in pairs])
    reply = _POOL.call({"op": "pairs", "pairs": [list(p) for p in pairs]})
    if "bad" in reply:
        return reply["bad"], reply["error"]
    if "error" in reply:
        return 0, reply["error"]
    return None if reply["miss"] is None else (reply["miss"], None)
