"""Resources and their execution units, as the scheduler sees them.

An ``ExeUnit`` is the capability record the scheduler matches jobs
against: what one execution unit of a resource offers, how many jobs it
takes at once and which executor runs them.  The embedded local resource
(the appliance host itself) is built here from the machine's own figures.
"""

import os
import platform
import shutil
import threading
from dataclasses import dataclass, field, fields

LOCAL_RESOURCE = "localhost.0"
LOCAL_EXE = "local"

_MACHINE_ARCH = {"x86_64": "AMD64", "amd64": "AMD64", "i386": "X86", "i686": "X86",
                 "aarch64": "ARM64", "arm64": "ARM64", "riscv64": "RISCV64",
                 "sparc64": "SPARC64", "ia64": "IA64"}


@dataclass
class ExeUnit:
    """One execution unit: its specs, capacity and the executor that serves it."""

    resource: str
    name: str
    executor: str
    architecture: str = "AMD64"
    nodecount: int = 1
    cpucount: int = 1
    memory: int = 1024
    disk: int = 0
    cputime: int = 86400
    runtimeenvs: tuple = ()
    re_values: dict = field(default_factory=dict)  # runtime environment -> {VARIABLE: value}
    vgrids: tuple = ("Generic",)
    vgrids_waiting: tuple = ()  # of vgrids: those that have not accepted the resource (yet)
    platform: str = ""
    sandbox: bool = False
    jobtype: str = "all"
    minprice: str = "0"
    slots: int = 1
    staging: int = 0  # jobs taken beyond the slots, to stage while others run
    online: bool = True
    down_reason: str = ""
    down_until: float = 0.0  # when to try an offline unit again
    down_since: float = 0.0  # when the latest failure took it out (0: it is up)
    failures: int = 0  # consecutive failures: the back-off doubles with each
    running: set = field(default_factory=set)
    last_seen: float = 0.0  # the last time the unit answered (a job ended there)
    last_request: float = 0.0  # the last time it was given a job
    stopped: bool = False  # stopped by an owner: no new jobs until started again

    @property
    def unit_id(self):
        return "%s_%s" % (self.resource, self.name)

    def free_slots(self):
        """Jobs the unit takes now: its slots, plus the ones it may stage ahead."""
        if not self.online or self.stopped:
            return 0
        return max(0, self.slots + self.staging - len(self.running))

    def mark_down(self, reason, now, first_backoff=5.0, max_backoff=300.0):
        """Take the unit out of scheduling for a while; the wait doubles each time.

        A stopped unit stays stopped: no back-off is set that would bring it
        back when it ends."""
        self.failures += 1
        if self.stopped:
            return
        self.online = False
        self.down_reason = reason
        self.down_since = now
        self.down_until = now + min(max_backoff, first_backoff * 2 ** (self.failures - 1))

    def finished_job(self, started):
        """A job that started at `started` finished here: the unit works.  A
        job that started before the unit's latest failure proves nothing about
        it (a disk may have filled meanwhile), so the back-off stays then."""
        if started >= self.down_since:
            self.mark_up()

    def mark_up(self):
        self.failures, self.down_until, self.down_since = 0, 0.0, 0.0
        if not self.stopped:
            self.online, self.down_reason = True, ""

    def stop(self, reason):
        """An owner stopped the unit: offline, without a back-off that ends."""
        self.stopped, self.online, self.down_reason, self.down_until = True, False, reason, 0.0

    def start(self):
        """An owner started the unit again; the keep-alive or the next job shows
        whether it is really reachable."""
        self.stopped = False
        self.mark_up()

    def take_specs(self, other):
        """Adopt other's specs (an edited configuration), keeping this unit's life:
        its running jobs, when it was last seen and asked, up, down or stopped."""
        for name in SPEC_FIELDS:
            setattr(self, name, getattr(other, name))

    def specs_text(self):
        return ("%s, %d node(s) x %d core(s), %d MB memory, %d GB disk, %d s max"
                % (self.architecture or "any arch", self.nodecount, self.cpucount,
                   self.memory, self.disk, self.cputime))


SPEC_FIELDS = tuple(f.name for f in fields(ExeUnit) if f.name not in (
    "resource", "name", "vgrids_waiting", "online", "down_reason", "down_until", "failures", "running",
    "last_seen", "last_request", "stopped"))


def machine_architecture():
    return _MACHINE_ARCH.get(platform.machine().lower(), platform.machine().upper())


def machine_memory_mb():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 1024


def local_exe_unit(state_dir, slots=None, cputime=7 * 86400, runtimeenvs=None, staging=None,
                   vgrids=("Generic",)):
    """The appliance host as a resource: its cores, memory, free disk.

    By default it takes one job per slot beyond its slots: that job's folder
    and inputs are made ready while the slots are busy, so a slot that frees
    up starts the next job at once."""
    cores = os.cpu_count() or 1
    slots = slots or cores
    disk_gb = shutil.disk_usage(state_dir).free // (1024 ** 3)
    return ExeUnit(resource=LOCAL_RESOURCE, name=LOCAL_EXE, executor="local",
                   architecture=machine_architecture(), nodecount=1, cpucount=cores,
                   memory=machine_memory_mb(), disk=int(disk_gb), cputime=cputime,
                   runtimeenvs=tuple(runtimeenvs or {}), re_values=dict(runtimeenvs or {}),
                   vgrids=tuple(vgrids), slots=slots,
                   staging=slots if staging is None else staging)


class ResourceRegistry:
    """The exe units known to this grid; thread-safe."""

    def __init__(self):
        self.lock = threading.RLock()
        self.units = {}
        self.generation = 0  # changes whenever what the units offer changes
        self.defined_runtimeenvs = lambda: ()  # the grid sets RuntimeEnvDB.names

    def add(self, unit):
        with self.lock:
            self.units[unit.unit_id] = unit
            self.generation += 1

    def remove(self, unit_id):
        with self.lock:
            self.units.pop(unit_id, None)
            self.generation += 1

    def touch(self):
        """Call after changing a unit's specs, so cached matches are redone."""
        with self.lock:
            self.generation += 1

    def all(self):
        with self.lock:
            return list(self.units.values())

    def get(self, unit_id):
        return self.units.get(unit_id)

    def providers(self, runtimeenv):
        """The resources whose exe units provide a runtime environment."""
        return sorted({u.resource for u in self.all() if runtimeenv in u.runtimeenvs})

    def known_runtimeenvs(self):
        """What a job may ask for: the defined runtime environments and any
        that a resource provides (the appliance host's local_runtimeenvs)."""
        names = set(self.defined_runtimeenvs())
        for unit in self.all():
            names.update(unit.runtimeenvs)
        return names
