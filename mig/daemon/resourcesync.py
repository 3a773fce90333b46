"""Keeps the running grid's remote resources in step with their records.

The resource records (mig/core/resourcedb.py) are the source of truth: the
portal and the CLI (another process) write them, nothing else.  Every tick
``check()`` compares a cheap signature of the records; when it changed (and
whenever the portal calls ``sync()`` after a change) the scheduler's exe
units and the ssh executor's resources are rebuilt from them:

* new exe units join, those of removed resources or units leave;
* a changed unit takes its new specs in place, so its running jobs, last
  seen and back-off stay;
* a unit its owner stopped goes offline ("stopped by owner") and gets no new
  jobs; jobs already running there (or on a removed unit) run to their end.
"""

import logging
import threading

from mig.core.resconf import exe_units
from mig.daemon.periodic import Periodic
from mig.core.resourcedb import stopped_units
from mig.errors import ClientError

log = logging.getLogger("mig.resourcesync")

STOPPED_REASON = "stopped by owner"
EXECUTOR = "ssh"  # native and Slurm resources are both reached over ssh


class ResourceSync:
    """resources: ResourceDB; registry: the scheduler's ResourceRegistry;
    set_remotes({name: conf}): hands the configurations to the ssh executor
    (the composition root makes it when the first one arrives); on_change():
    called after a change (wakes the scheduler)."""

    def __init__(self, resources, registry, set_remotes, on_change=None, tick_seconds=5.0,
                 vgrid_gate=None):
        self.resources = resources
        self.vgrid_gate = vgrid_gate  # marks a unit's VGrids that have not accepted it
        self.registry = registry
        self.set_remotes = set_remotes
        self.on_change = on_change
        self.signature = None
        self.lock = threading.Lock()
        self.periodic = Periodic("resourcesync", tick_seconds, self.check, "resource sync", log)

    def check(self):
        """Sync if the records changed since the last sync; cheap otherwise."""
        if self.resources.signature() != self.signature:
            self.sync()

    def tick(self, now=None):
        self.check()

    def sync(self):
        with self.lock:
            signature = self.resources.signature()  # before reading: a later write syncs again
            records = {}
            for name in self.resources.names():
                try:
                    records[name] = self.resources.get(name)
                except ClientError:
                    continue  # removed meanwhile
            self._apply(records)
            self.signature = signature
        if self.on_change is not None:
            self.on_change()

    def _apply(self, records):
        wanted = {}
        for name, record in records.items():
            stopped = stopped_units(record)
            for unit in exe_units(name, record["CONF"], EXECUTOR):
                wanted[unit.unit_id] = (unit, unit.name in stopped)
        current = {u.unit_id: u for u in self.registry.all() if u.executor == EXECUTOR}
        for unit_id in current.keys() - wanted.keys():
            self.registry.remove(unit_id)  # leaves first, so no new job goes there
        self.set_remotes({name: record["CONF"] for name, record in records.items()})
        for unit_id, (fresh, stop) in sorted(wanted.items()):
            unit = current.get(unit_id)
            if unit is None:
                unit = fresh
            else:
                unit.take_specs(fresh)
            if stop and not unit.stopped:
                unit.stop(STOPPED_REASON)
            elif not stop and unit.stopped:
                unit.start()
            if self.vgrid_gate is not None:
                self.vgrid_gate(unit)
            if unit_id not in current:
                self.registry.add(unit)
        self.registry.touch()  # cached fits are redone with the new specs

    # -- life ----------------------------------------------------------------------------
    def start(self):
        self.periodic.start()

    def stop(self):
        self.periodic.stop(timeout=10)
