"""Browser sessions, the login form's pre-session token and login throttling.

A session id is 256 random bits in a cookie that is Secure, HttpOnly and
SameSite=Strict; sessions live in memory (a restart logs browsers out) and
end after a spell of inactivity, or when the account's session epoch moves
on (a password change, also one made with the CLI in another process).

Failed logins slow down the source that makes them, never the account: a
guesser from one address cannot lock the real user out from another one.
"""

import ipaddress
import math
import re
import secrets
import threading
import time
import urllib.parse
import unicodedata

from mig.core import auth

COOKIE = "mig_session"
# __Host-: only this origin may set it (no Domain, Path=/, Secure), so a sibling
# host cannot plant a login nonce of its own choosing.
LOGIN_COOKIE = "__Host-mig_login"
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
DEFAULT_NEXT = "/cgi-bin/dashboard.py"


class Sessions:
    """sid -> [user, expires, epoch]; epoch(user) gives the account's current epoch."""

    def __init__(self, idle_seconds=8 * 3600, clock=time.time, epoch=lambda user: 0):
        self.idle = idle_seconds
        self.clock = clock
        self.epoch = epoch
        self.lock = threading.Lock()
        self.table = {}

    def create(self, user):
        sid = secrets.token_urlsafe(32)
        epoch = self.epoch(user)
        with self.lock:
            self.table[sid] = [user, self.clock() + self.idle, epoch]
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
            user, epoch = entry[0], entry[2]
        # Read outside the lock: it may touch the account record on disk.
        if epoch is None or self.epoch(user) != epoch:  # password changed, account gone
            self.drop(sid)
            return None
        with self.lock:
            if sid in self.table:
                self.table[sid][1] = now + self.idle
        return user

    def drop(self, sid):
        with self.lock:
            self.table.pop(sid, None)

    def drop_user(self, user, keep=None):
        """End a user's sessions after a password change; `keep` (the session
        that made the change) moves on to the new epoch and stays."""
        epoch = self.epoch(user)
        with self.lock:
            for sid in [s for s, e in self.table.items() if e[0] == user and s != keep]:
                del self.table[sid]
            if keep in self.table:
                self.table[keep][2] = epoch


def source_key(peer):
    """The throttling key of a client address: IPv6 by /64, as one host usually
    holds a whole /64."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return str(peer)
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network((address, 64), strict=False))
    return str(address)


class LoginThrottle:
    """Slows password guessing without a per-account lock.

    Per (source, name): `free` attempts, then each further one waits
    2**k seconds (up to `max_delay`) after the previous one.  Per source,
    across names: a token bucket of `burst` attempts refilled at one per
    `refill` seconds.  Every attempt counts until it succeeds (so parallel
    requests cannot slip past); a success clears its pair and refunds the
    source's token.
    """

    def __init__(self, free=3, max_delay=300, burst=20, refill=6.0, forget=86400,
                 max_entries=100000, clock=time.monotonic):
        self.free, self.max_delay, self.forget = free, max_delay, forget
        self.burst, self.refill = burst, refill
        self.max_entries, self.clock = max_entries, clock
        self.lock = threading.Lock()
        self.pairs = {}    # (source, name) -> [attempts, last attempt]
        self.sources = {}  # source -> [tokens, last refill]

    def _tokens(self, source, now):
        tokens, since = self.sources.get(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) / self.refill)
        self.sources[source] = [tokens, now]
        return tokens

    def attempt(self, peer, name):
        """Record an attempt and return 0, or refuse it: seconds to wait (>= 1)."""
        now, source = self.clock(), source_key(peer)
        key = (source, name[:100])
        with self.lock:
            self._prune(now)
            count, last = self.pairs.get(key, (0, now))
            if now - last > self.forget:
                count = 0
            waits = []
            if count >= self.free:
                delay = min(self.max_delay, 2 ** (count - self.free))
                waits.append(last + delay - now)
            tokens = self._tokens(source, now)
            if tokens < 1:
                waits.append((1 - tokens) * self.refill)
            wait = max(waits or [0])
            if wait > 0:
                return max(1, math.ceil(wait))
            self.pairs[key] = [count + 1, now]
            self.sources[source][0] = tokens - 1
            return 0

    def succeeded(self, peer, name):
        source = source_key(peer)
        with self.lock:
            self.pairs.pop((source, name[:100]), None)
            if source in self.sources:
                entry = self.sources[source]
                entry[0] = min(self.burst, entry[0] + 1)

    def _prune(self, now):
        """Bound memory: forget quiet pairs and full buckets once the tables grow."""
        if len(self.pairs) > self.max_entries:
            quiet = sorted(self.pairs, key=lambda k: self.pairs[k][1])
            for key in quiet[:len(quiet) // 2]:
                del self.pairs[key]
        if len(self.sources) > self.max_entries:
            for source in [s for s in self.sources if self._tokens(s, now) >= self.burst]:
                del self.sources[source]


def safe_next(path):
    """Where to go after login: only a local absolute path, else the dashboard.

    Browsers drop tabs and newlines from URLs and read '\\' as '/', so
    '/\\tevil' or '/\\\\evil' would leave the site: the path must start with
    one '/' followed by neither '/' nor '\\', and contain no whitespace or
    control characters, no '\\', also once percent-decoded (repeatedly).
    """
    if not isinstance(path, str) or not 1 < len(path) <= 2048:
        return DEFAULT_NEXT
    seen, text = [path], path
    for _ in range(3):  # %25-encoded layers too
        text = urllib.parse.unquote(text)
        if text == seen[-1]:
            break
        seen.append(text)
    for text in seen:
        if text[:1] != "/" or text[1:2] in ("/", "\\", "") or "\\" in text:
            return DEFAULT_NEXT
        if any(c.isspace() or unicodedata.category(c).startswith("C") for c in text):
            return DEFAULT_NEXT
    if not all(33 <= ord(c) < 127 for c in path):  # the Location header stays ASCII
        return DEFAULT_NEXT
    return path


def cookie_value(header, name=COOKIE):
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def login_nonce(header):
    """The browser's pre-login nonce from its Cookie header, if it has a valid one."""
    value = cookie_value(header, LOGIN_COOKIE)
    return value if _NONCE_RE.fullmatch(value) else ""


def new_login_nonce():
    return secrets.token_urlsafe(32)


def login_csrf_token(secret, nonce):
    """The login form's token, bound to the browser's pre-login nonce.  No
    account name contains ':', so it never equals a user's CSRF token."""
    return auth.csrf_token(secret, "", "login:" + nonce)


def check_login_csrf(secret, nonce, token):
    return bool(nonce) and auth.check_csrf(secret, "", token, "login:" + nonce)


def set_login_cookie(nonce):
    """A browser-session cookie: the login form stays usable while the browser is open."""
    return "%s=%s; Path=/; Secure; HttpOnly; SameSite=Strict" % (LOGIN_COOKIE, nonce)


def set_cookie(sid, max_age=None):
    attrs = ["%s=%s" % (COOKIE, sid), "Path=/", "Secure", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        attrs.append("Max-Age=%d" % max_age)
    return "; ".join(attrs)
