"""Keeps the job journal short and the hot index small, off the request path.

Submissions and state changes are durable once journaled; every few
seconds this daemon makes the job database durable and drops the journal
segments it covers (so restarts replay little), and applies changes the
database could not take while the disk was full.  Once an hour it moves
final jobs older than the retention age into the archive, or purges them.
"""

import logging
import time

from mig.daemon.periodic import Periodic

log = logging.getLogger("mig.checkpoint")


class CheckpointDaemon:
    def __init__(self, jobs, interval=2.0, retention_days=0, archive=True,
                 retire_every=3600.0, clock=time.monotonic):
        self.jobs = jobs
        self.retention = retention_days * 86400
        self.archive = archive
        self.retire_every = retire_every
        self.clock = clock
        self.last_retire = None
        self.periodic = Periodic("checkpoint", interval, self.tick,
                                 "checkpoint (the journal keeps the records)", log)

    def tick(self):
        checkpointed = False
        if self.jobs.needs_checkpoint():
            checkpointed = self.jobs.checkpoint()
        now = self.clock()
        if self.retention and (self.last_retire is None
                               or now - self.last_retire >= self.retire_every):
            self.last_retire = now
            moved = self.jobs.retire(self.retention, self.archive)
            if moved:
                log.info("%s %d final jobs older than %d days", "archived" if self.archive
                         else "purged", moved, self.retention // 86400)
        return checkpointed

    def start(self):
        self.periodic.start()

    def stop(self):
        self.periodic.stop()
        self.jobs.close()
