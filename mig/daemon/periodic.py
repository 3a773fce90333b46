"""A background thread that does one round of work every few seconds.

The checkpoint, the keep-alive and the resource sync all need the same
thing: a daemon thread that waits, runs a round, logs a failed round and
goes on (one bad round must never stop the appliance's housekeeping), and
stops promptly when asked.
"""

import logging
import threading


class Periodic:
    """Calls ``work()`` every ``interval`` seconds in a thread called ``name``
    (an interval of 0 or less: never)."""

    def __init__(self, name, interval, work, what=None, logger=None):
        self.name = name
        self.interval = interval
        self.work = work
        self.what = what or name  # how a failed round is named in the log
        self.log = logger or logging.getLogger("mig." + name)
        self.stopping = threading.Event()
        self.thread = None

    def start(self):
        if self.interval <= 0:
            return
        self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.wait(self.interval):
            try:
                self.work()
            except Exception:  # the next round may well succeed
                self.log.exception("%s failed", self.what)

    def stop(self, timeout=30.0):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
