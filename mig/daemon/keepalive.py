"""Keep-alive of remote resources: is each one still reachable?

Every ``interval`` seconds, in its own thread (never the scheduler's), each
remote resource with a unit that is not stopped is probed once (an ssh
login through the resource's ControlMaster, given as ``probe``), all
resources at the same time.  An answer sets the units' last seen; a failure
takes them offline with the reason, and keeps them there until a probe
succeeds (rather than the scheduler trying them blindly after a back-off,
which would spend a job's retries).  Units taken down by a failed job keep
their back-off: a working login does not mean that jobs run there.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from mig.daemon.periodic import Periodic

log = logging.getLogger("mig.keepalive")

PREFIX = "keep-alive: "


class KeepAlive:
    """probe(resource_name): None when the grid can log in, else the reason."""

    def __init__(self, registry, probe, interval=60.0, executor="ssh", on_change=None,
                 clock=time.time, workers=8):
        self.registry = registry
        self.probe = probe
        self.interval = interval
        self.executor = executor
        self.on_change = on_change
        self.clock = clock
        self.workers = workers
        self.periodic = Periodic("keepalive", interval, self.tick, "keep-alive round", log)

    def tick(self, now=None):
        """Probe every resource once; returns {resource: reason or None}."""
        groups = {}
        for unit in self.registry.all():
            if unit.executor == self.executor:
                groups.setdefault(unit.resource, []).append(unit)
        names = [name for name, units in groups.items() if not all(u.stopped for u in units)]
        if not names:
            return {}
        with ThreadPoolExecutor(max_workers=min(self.workers, len(names))) as pool:
            results = dict(zip(names, pool.map(self._safe_probe, names)))
        now = self.clock() if now is None else now
        changed = False
        for name, reason in results.items():
            for unit in groups[name]:
                changed |= self._record(unit, reason, now)
        if changed and self.on_change is not None:
            self.on_change()
        return results

    def _safe_probe(self, name):
        try:
            return self.probe(name)
        except Exception as exc:  # a probe that breaks says so, it does not stop the others
            return "probe failed: %s" % exc

    def _record(self, unit, reason, now):
        """Update one unit from its resource's probe; True if it came up."""
        if reason is None:
            unit.last_seen = now
            if not unit.online and not unit.stopped and unit.down_reason.startswith(PREFIX):
                unit.mark_up()
                return True
            return False
        if unit.stopped:
            return False
        if unit.online:
            unit.mark_down(PREFIX + reason, now)
        else:
            unit.down_reason = PREFIX + reason
        # down until a probe succeeds: the scheduler need not try it blindly
        unit.down_until = max(unit.down_until, now + 2 * self.interval + 60)
        return False

    # -- life ----------------------------------------------------------------------------
    def start(self):
        self.periodic.start()

    def stop(self):
        self.periodic.stop()
