"""Each user's in-portal inbox: messages from the grid (job notifications,
membership requests, forum posts, failed mail) and from other users.

Kept in the store as one record per user (``inbox/<user>``), newest last,
at most MAX_MESSAGES (the oldest go first).  A message is a dict: id, time,
sender ("" for the grid), subject, text, read.
"""

import secrets
import threading
import time

from mig.errors import ClientError

MAX_MESSAGES = 500
MAX_TEXT = 20000
MAX_SUBJECT = 200
SEND_LIMIT = 200  # messages one user may send per hour (one per recipient)


class Inbox:
    def __init__(self, store, clock=time.time):
        self.store, self.clock = store, clock
        self.sent = {}  # sender -> times of their recent messages (this run)
        self.lock = threading.Lock()

    def allow(self, sender, count):
        """Count count messages from sender, or refuse them all beyond the hourly limit."""
        now = self.clock()
        with self.lock:
            recent = [t for t in self.sent.get(sender, []) if now - t < 3600]
            if len(recent) + count > SEND_LIMIT:
                raise ClientError("you sent %d messages in the last hour; at most %d may be "
                                  "sent an hour: try again later" % (len(recent), SEND_LIMIT))
            self.sent[sender] = recent + [now] * count

    @staticmethod
    def _path(user):
        return "inbox/%s" % user

    def messages(self, user):
        """Newest first."""
        return list(reversed(self.store.read(self._path(user), [])))

    def unread(self, user):
        return sum(1 for m in self.store.read(self._path(user), []) if not m["read"])

    def deliver(self, user, subject, text, sender=""):
        message = {"id": secrets.token_hex(8), "time": time.time(), "sender": sender,
                   "subject": subject.strip()[:MAX_SUBJECT] or "(no subject)",
                   "text": text[:MAX_TEXT], "read": False}
        self.store.update(self._path(user),
                          lambda old: (list(old or []) + [message])[-MAX_MESSAGES:], [])
        return message

    def mark_read(self, user):
        self.store.update(self._path(user),
                          lambda old: [dict(m, read=True) for m in old or []], [])

    def delete(self, user, message_id):
        def change(old):
            kept = [m for m in old or [] if m["id"] != message_id]
            if len(kept) == len(old or []):
                raise ClientError("no such message: %s" % message_id)
            return kept
        self.store.update(self._path(user), change, [])
