"""Moves journaled job records into their files, off the request path.

Submissions and state changes are durable once journaled; this daemon
writes the records' files in the background every few seconds (and when
the journal grows large), so the journal stays short and restarts fast.
"""

import logging
import threading

log = logging.getLogger("mig.checkpoint")


class CheckpointDaemon:
    def __init__(self, jobs, interval=2.0, max_entries=20000, settle=10.0):
        self.jobs = jobs
        self.interval = interval
        self.settle = settle  # jobs still changing stay in the journal this long
        self.max_entries = max_entries
        self.stopping = threading.Event()
        self.thread = None

    def tick(self):
        if self.jobs.unwritten:
            return self.jobs.checkpoint(self.settle)
        return 0

    def start(self):
        self.thread = threading.Thread(target=self._loop, name="checkpoint", daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:  # keep journaling safe even if one checkpoint fails
                log.exception("checkpoint failed; the journal keeps the records")

    def stop(self):
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=30)
        self.jobs.close()
