"""What the local resource needs from the host to keep jobs apart: exclusive
uids for running jobs, the cgroup folders of the launchers, and a sweep that
ends whatever an earlier run of the appliance left running.

Every running job gets a uid (and the same gid) of its own from a range that
no account uses, so the kernel's own rules keep jobs apart: another uid
cannot read a 0700 folder, signal or ptrace.  The range is derived from the
state folder unless configured, so two appliances on one host do not share
it, and a restarted appliance finds the processes of its earlier run.
"""

import contextlib
import grp
import hashlib
import json
import os
import pwd
import signal
import sys
import threading

from mig.errors import ConfigError
from mig.store.atomic import write_atomic

UID_FLOOR = 0x40000000  # far above any account a distribution hands out
UID_SPAN = 65536
UID_BLOCKS = 16384  # ranges of UID_SPAN between UID_FLOOR and 2**31


def default_uid_base(key):
    """A range of its own per state folder: the same after a restart."""
    block = int(hashlib.sha256(key.encode()).hexdigest(), 16) % UID_BLOCKS
    return UID_FLOOR + block * UID_SPAN


class JobIdentities:
    """Exclusive uids for running jobs, taken in turn so that a uid comes
    back only after the whole range was used."""

    def __init__(self, base, count):
        if base < 1000 or count < 1 or base + count > 2 ** 32 - 2:
            raise ConfigError("local_uid_base/local_uid_count give no usable uid range")
        self.base, self.count = base, count
        self._check_unused()
        self.lock = threading.Lock()
        self.next = 0
        self.busy = set()

    def _check_unused(self):
        top = self.base + self.count
        for entry in pwd.getpwall():
            if self.base <= entry.pw_uid < top:
                raise ConfigError("the job uid range %d-%d holds the account %s: set "
                                  "local_uid_base to a free range" % (self.base, top - 1,
                                                                      entry.pw_name))
        for entry in grp.getgrall():
            if self.base <= entry.gr_gid < top:
                raise ConfigError("the job uid range %d-%d holds the group %s: set "
                                  "local_uid_base to a free range" % (self.base, top - 1,
                                                                      entry.gr_name))

    def take(self):
        with self.lock:
            for _ in range(self.count):
                uid = self.base + self.next
                self.next = (self.next + 1) % self.count
                if uid not in self.busy:
                    self.busy.add(uid)
                    return uid
        raise RuntimeError("every job uid is in use")

    def give_back(self, uid):
        with self.lock:
            self.busy.discard(uid)

    def owns(self, uid):
        return self.base <= uid < self.base + self.count


# -- cgroups ------------------------------------------------------------------------
def _mounts():
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            left, _, right = line.partition(" - ")
            fields, more = left.split(), right.split()
            yield fields[3], fields[4].replace("\\040", " "), more[0], more[-1].split(",")


def _own_cgroup(controller):
    """Our cgroup path in the hierarchy of a v1 controller ('' for v2)."""
    with open("/proc/self/cgroup", encoding="ascii") as handle:
        for line in handle:
            _num, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(",") or (not controller and not names):
                return path
    return None


def cgroup_folders(name):
    """(cgroup v2 folder, v1 memory folder) for this appliance's launchers, each
    None where the host has no such hierarchy (or it is not writable)."""
    v2 = memory = None
    try:
        for root, point, fstype, options in _mounts():
            if fstype == "cgroup2" and v2 is None:
                own = _own_cgroup("")
                if own is not None and root == "/":
                    v2 = os.path.join(point, own.lstrip("/"), name)
            elif fstype == "cgroup" and "memory" in options and memory is None:
                own = _own_cgroup("memory")
                if own is not None and root == "/":
                    memory = os.path.join(point, own.lstrip("/"), name)
    except OSError:
        return None, None
    return (_usable(v2), _usable(memory))


def _usable(folder):
    if folder is None:
        return None
    try:
        os.makedirs(folder, exist_ok=True)
        return folder
    except OSError:
        return None


def kill_cgroup_tree(folder):
    """End every process in a cgroup folder and the ones below it, then remove
    the empty folders (the launchers' slots of an earlier run)."""
    if not folder or not os.path.isdir(folder):
        return
    for root, dirs, _files in os.walk(folder, topdown=False):
        with contextlib.suppress(OSError):
            with open(os.path.join(root, "cgroup.kill"), "w") as handle:
                handle.write("1")
        for _ in range(200):
            try:
                with open(os.path.join(root, "cgroup.procs")) as handle:
                    pids = handle.read().split()
            except OSError:
                break
            if not pids:
                break
            for pid in pids:  # v1 has no cgroup.kill; the pids are of no job's choosing
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
            threading.Event().wait(0.01)
        if root != folder:
            with contextlib.suppress(OSError):
                os.rmdir(root)


# -- processes of a uid range ---------------------------------------------------------
def kill_uid_range(base, count):
    """SIGKILL every process whose uid is in the range; returns how many.

    A pidfd is opened before the owner is checked, and the signal goes
    through it: a pid that is reused meanwhile is never signalled."""
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fd = os.pidfd_open(int(name))
        except OSError:
            continue
        try:
            if base <= os.stat("/proc/" + name).st_uid < base + count:
                signal.pidfd_send_signal(fd, signal.SIGKILL)
                killed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return killed


# -- the launcher -----------------------------------------------------------------------
def launcher_source():
    """The launcher as one program's text (namespaces.py, then launcher.py): it
    runs as its own program under -I, also from the zipapp, so nothing is
    imported from beside it."""
    from importlib import resources
    folder = resources.files("mig.execute")
    return "\n\n".join(folder.joinpath(name).read_text("utf-8")
                       for name in ("namespaces.py", "launcher.py"))


def install_launcher(folder):
    """Write launcher.py into folder (ours, closed to jobs) and return its path:
    run from a file, its command line stays short (and plain in ps)."""
    path = os.path.join(folder, ".launcher.py")
    source = launcher_source()
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == source:
                return path  # as it was: nothing to write (a full disk still starts)
    except (OSError, UnicodeDecodeError):
        pass
    write_atomic(path, source.encode("utf-8"))
    return path


def launcher_command(path):
    return [sys.executable, "-I", "-S", path]


def launcher_settings(conf):
    """The launcher's first line in: its settings."""
    return (json.dumps(conf, sort_keys=True) + "\n").encode()
