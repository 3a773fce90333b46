"""Post/Redirect/Get for the portal's state-changing forms.

A browser's form POST to a state-changing backend is run once; its result
is kept here for a while and the browser is sent (303) to a GET of it, so
reloading the result page shows it again instead of posting again.  Every
form carries a one-time token (``_once``): a POST that comes again with a
token already used (the back button, a double click, a replayed request)
runs nothing and is sent to the first one's result.
"""

import collections
import secrets
import threading
import time

KEEP_SECONDS = 1800
KEEP_RESULTS = 500  # results kept at once (the oldest go first)


class Results:
    """Results of form posts by id, and one-time tokens by (user, token)."""

    def __init__(self, keep_seconds=KEEP_SECONDS, keep=KEEP_RESULTS, clock=time.monotonic):
        self.keep_seconds, self.keep, self.clock = keep_seconds, keep, clock
        self.lock = threading.Lock()
        self.results = collections.OrderedDict()  # id -> (user, when, result)
        self.tokens = {}  # (user, token) -> id

    def _expire(self):
        limit = self.clock() - self.keep_seconds
        while self.results:
            rid, (user, when, _result, token) = next(iter(self.results.items()))
            if when >= limit and len(self.results) <= self.keep:
                return
            del self.results[rid]
            self.tokens.pop((user, token), None)

    def used(self, user, token):
        """The id of the result of an earlier post with this token, or None."""
        if not token:
            return None
        with self.lock:
            self._expire()
            return self.tokens.get((user, token))

    def put(self, user, token, result):
        with self.lock:
            rid = secrets.token_urlsafe(12)
            self.results[rid] = (user, self.clock(), result, token)
            if token:
                self.tokens[(user, token)] = rid
            self._expire()
            return rid

    def get(self, user, rid):
        """The kept result for this user, or None (another user's, or expired)."""
        with self.lock:
            self._expire()
            found = self.results.get(rid)
        if found is None or found[0] != user:
            return None
        return found[2]
