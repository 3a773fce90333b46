"""Sends the grid's e-mail (job notifications and the like) from a thread
of its own, so that a slow or absent SMTP server never holds up the
scheduler or a request.

A message that cannot be sent (no server set up, the server refuses it or
is down after a few tries) goes to the recipient user's in-portal inbox
instead, with the reason, so nothing is lost silently.
"""

import logging
import queue
import smtplib
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

log = logging.getLogger("mig.mailer")

TRIES = 3


class Mailer:
    """server: "host:port" ("" for none); sender: the From address;
    to_inbox(user, subject, text): where a message that was not sent goes."""

    def __init__(self, server, sender, to_inbox, timeout=20.0, retry_wait=5.0):
        self.server, self.sender = server, sender
        self.to_inbox = to_inbox
        self.timeout, self.retry_wait = timeout, retry_wait
        self.queue = queue.Queue(maxsize=10000)
        self.thread = None
        self.sent = 0

    @property
    def enabled(self):
        return bool(self.server)

    def send(self, address, subject, text, user=None):
        """Queue a message to address; user: whose inbox gets it when it cannot be sent."""
        if not self.enabled:
            if user:
                self.to_inbox(user, subject, text)
            return
        try:
            self.queue.put_nowait((address, subject, text, user))
        except queue.Full:
            log.error("mail queue full: a message to %s went to the inbox", address)
            if user:
                self.to_inbox(user, subject, text)

    def start(self):
        if self.enabled and self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="mailer", daemon=True)
            self.thread.start()

    def stop(self, timeout=10.0):
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(timeout)
            self.thread = None

    def _loop(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            address, subject, text, user = item
            problem = None
            for attempt in range(TRIES):
                problem = self._deliver(address, subject, text)
                if problem is None:
                    self.sent += 1
                    break
                if attempt + 1 < TRIES:
                    time.sleep(self.retry_wait)
            if problem is not None:
                log.warning("mail to %s not sent: %s", address, problem)
                if user:
                    self.to_inbox(user, subject, "%s\n\n(This was to be e-mailed to %s, but "
                                                 "the mail server said: %s)"
                                  % (text, address, problem))

    def _deliver(self, address, subject, text):
        host, _sep, port = self.server.rpartition(":")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, address, subject
        message["Date"], message["Message-ID"] = formatdate(localtime=False), make_msgid()
        message.set_content(text)
        try:
            with smtplib.SMTP(host or self.server, int(port or 25), timeout=self.timeout) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            return str(exc) or exc.__class__.__name__
        return None
