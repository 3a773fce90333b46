"""Browser sessions and the login rate limit.

A session id is 256 random bits in a cookie that is Secure, HttpOnly and
SameSite=Strict; sessions live in memory (a restart logs browsers out) and
end after a spell of inactivity.  Failed logins are counted per address and
per account, and further attempts are refused for a while.
"""

import secrets
import threading
import time

COOKIE = "mig_session"


class Sessions:
    def __init__(self, idle_seconds=8 * 3600, clock=time.time):
        self.idle = idle_seconds
        self.clock = clock
        self.lock = threading.Lock()
        self.table = {}  # sid -> [user, expires]

    def create(self, user):
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.table[sid] = [user, self.clock() + self.idle]
        return sid

    def user(self, sid):
        if not sid:
            return None
        now = self.clock()
        with self.lock:
            entry = self.table.get(sid)
            if entry is None:
                return None
            if entry[1] < now:
                del self.table[sid]
                return None
            entry[1] = now + self.idle
            return entry[0]

    def drop(self, sid):
        with self.lock:
            self.table.pop(sid, None)

    def drop_user(self, user, keep=None):
        """End a user's other sessions (after a password change)."""
        with self.lock:
            for sid in [s for s, e in self.table.items() if e[0] == user and s != keep]:
                del self.table[sid]


class LoginLimiter:
    """At most `attempts` failures per key in `window` seconds."""

    def __init__(self, attempts=5, window=300, clock=time.time):
        self.attempts, self.window, self.clock = attempts, window, clock
        self.lock = threading.Lock()
        self.failures = {}

    def _recent(self, key, now):
        times = [t for t in self.failures.get(key, []) if now - t < self.window]
        self.failures[key] = times
        return times

    def wait_seconds(self, *keys):
        """0 when a login may be tried now, else how long to wait."""
        now = self.clock()
        with self.lock:
            waits = []
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.attempts:
                    waits.append(int(times[0] + self.window - now) + 1)
            return max(waits or [0])

    def failed(self, *keys):
        now = self.clock()
        with self.lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys):
        with self.lock:
            for key in keys:
                self.failures.pop(key, None)


def cookie_value(header, name=COOKIE):
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def set_cookie(sid, max_age=None):
    attrs = ["%s=%s" % (COOKIE, sid), "Path=/", "Secure", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        attrs.append("Max-Age=%d" % max_age)
    return "; ".join(attrs)
