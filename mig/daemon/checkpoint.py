"""Moves journaled job records into their files, off the request path.

Submissions and state changes are durable once journaled; this daemon
writes the records' files in the background every few seconds (and when
the journal grows large), so the journal stays short and restarts fast.
"""

import logging

from mig.daemon.periodic import Periodic

log = logging.getLogger("mig.checkpoint")


class CheckpointDaemon:
    def __init__(self, jobs, interval=2.0, max_entries=20000, settle=10.0):
        self.jobs = jobs
        self.settle = settle  # jobs still changing stay in the journal this long
        self.max_entries = max_entries
        self.periodic = Periodic("checkpoint", interval, self.tick,
                                 "checkpoint (the journal keeps the records)", log)

    def tick(self):
        if self.jobs.unwritten:
            return self.jobs.checkpoint(self.settle)
        return 0

    def start(self):
        self.periodic.start()

    def stop(self):
        self.periodic.stop()
        self.jobs.close()
