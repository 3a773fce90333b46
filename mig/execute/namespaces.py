"""The job launcher's confinement: namespaces, mounts, cgroups and disk checks.

Every job a launcher starts inherits what Sandbox.enter sets up once per
launcher: its own mount, IPC and (unless the resource allows network) network
namespaces, a read-only view of the host except the work folders, private
/tmp, /var/tmp and /dev/shm, the state folder hidden, and a /proc that hides
other users' processes.  Cgroup is one cgroup folder of a launcher's slot;
folder_use is the disk check the launcher runs while a job works.

Standard library only, and nothing imported from the appliance: install_launcher
(isolation.py) writes this file's text above launcher.py's into one program.
"""

import contextlib
import ctypes
import os
import shutil
import stat

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
CLONE_NEWIPC, CLONE_NEWNET = 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 36, 38, 4
MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
               "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME,
               "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}
KERNEL_FOLDERS = ("/proc", "/sys", "/dev")  # left as they are (devices, kernel views)
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")
VIEW = "/tmp/.mig-jobs"  # where jobs see the work root (inside the private /tmp)
libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def mount(source, target, fstype, flags, data=None):
    _check(libc.mount(source and source.encode(), target.encode(),
                      fstype and fstype.encode(), ctypes.c_ulong(flags),
                      data and data.encode()), "mount %s" % target)


def prctl(option, value):
    _check(libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl %d" % option)


def _unescape(path):
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        path = path.replace(code, chr(int(code[1:], 8)))
    return path


def _mounts():
    """(mount point, per-mount options) of every mount we see."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            found.append((_unescape(fields[4]), fields[5].split(",")))
    return found


def _below(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class Sandbox:
    """The namespaces and mounts every job of this launcher inherits."""

    def __init__(self, conf):
        self.conf = conf
        self.features = []
        self.tmp_keep = {}  # private tmp folder -> the entry leading to the work root
        self.view = None

    def enter(self):
        flags = CLONE_NEWNS | CLONE_NEWIPC | (0 if self.conf["network"] else CLONE_NEWNET)
        privileged = os.geteuid() == 0
        uid, gid = os.getuid(), os.getgid()
        try:
            # Without root, a user namespace of our own lets us mount; our uid
            # keeps its number inside, so the jobs' shells hold no capability.
            _check(libc.unshare(flags | (0 if privileged else CLONE_NEWUSER)), "unshare")
            if not privileged:
                for name, text in (("setgroups", "deny"), ("uid_map", "%d %d 1" % (uid, uid)),
                                   ("gid_map", "%d %d 1" % (gid, gid))):
                    with open("/proc/self/" + name, "w", encoding="ascii") as handle:
                        handle.write(text)
        except OSError as exc:
            self.features.append("no-namespaces(%s)" % (exc.strerror or exc))
            return
        self.features += (["ipcns", "mountns"] + ([] if self.conf["network"] else ["netns"])
                          + ([] if privileged else ["userns"]))
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        work = self.conf["work_root"]
        mount(work, work, None, MS_BIND | MS_REC)  # stays writable below
        if self.conf.get("readonly", True):
            self._readonly(work)
        self._private_tmp(work)
        self._hide(work)
        self._view(work)
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible")
            self.features.append("hidepid")
        except OSError:
            pass

    def _readonly(self, work):
        failed = 0
        for point, options in _mounts():
            if _below(point, work) or any(_below(point, k) for k in KERNEL_FOLDERS):
                continue
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            for option in options:
                flags |= MOUNT_FLAGS.get(option, 0)
            try:
                mount(None, point, None, flags)
            except OSError:
                failed += 1
        self.features.append("readonly" if not failed else "readonly(%d failed)" % failed)

    def _cover(self, folder, work, options, flags=MS_NOSUID | MS_NODEV, readonly=False):
        """Mount an empty tmpfs over folder; the work root stays reachable
        (bound back in place) if it lies below.  Returns the entry of folder
        that leads to the work root, or None."""
        held = os.open(work, os.O_PATH | os.O_DIRECTORY)
        try:
            mount("tmpfs", folder, "tmpfs", flags, options)
            keep = None
            if _below(work, folder):
                os.makedirs(work, 0o711, exist_ok=True)
                mount("/proc/self/fd/%d" % held, work, None, MS_BIND | MS_REC)
                keep = os.path.relpath(work, folder).split("/")[0]
            if readonly:
                mount(None, folder, None, MS_REMOUNT | MS_RDONLY | flags)
            return keep
        finally:
            os.close(held)

    def _private_tmp(self, work):
        for folder in PRIVATE_TMP:
            if not os.path.isdir(folder) or os.path.islink(folder):
                continue
            self.tmp_keep[folder] = self._cover(
                folder, work, "mode=1777,size=%dm,nr_inodes=%d" % (self.conf["tmp_mb"],
                                                                 self.conf["tmp_inodes"]))
        self.features.append("private-tmp")

    def _view(self, work):
        """The work root again at VIEW, below folders anyone may pass, so a job
        reaches its folder by path whatever the host's folders above allow."""
        if "private-tmp" not in self.features:
            return
        os.mkdir(VIEW, 0o711)
        mount(work, VIEW, None, MS_BIND | MS_REC)
        self.view = VIEW
        self.features.append("jobs-view")

    def seen(self, path):
        """Where the job sees a path below the work root."""
        work = self.conf["work_root"].rstrip("/")
        if self.view and (path + "/").startswith(work + "/"):
            return self.view + path[len(work):]
        return path

    def _hide(self, work):
        """The state folder (and any other named) is an empty folder for jobs."""
        hidden = 0
        for folder in self.conf.get("hide", ()):
            if os.path.isdir(folder) and not os.path.islink(folder):
                self._cover(folder, work, "mode=0,size=4k,nr_inodes=64",
                            MS_NOSUID | MS_NODEV | MS_NOEXEC, readonly=True)
                hidden += 1
        if hidden:
            self.features.append("hidden-state")

    def clean_tmp(self):
        """Empty the private tmp folders after a job (nothing of it may stay)."""
        for folder, keep in self.tmp_keep.items():
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                path = os.path.join(folder, name)
                if name == keep or path == VIEW:
                    continue
                # rmtree works through descriptors and never follows a link,
                # but refuses to start at one: a link is simply unlinked.
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)


def folder_use(folder, limit_bytes, limit_entries):
    """Whether a folder holds more than the given bytes or entries (stops early)."""
    used = entries = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as listing:
                for entry in listing:
                    entries += 1
                    info = entry.stat(follow_symlinks=False)
                    used += info.st_blocks * 512
                    if used > limit_bytes or entries > limit_entries:
                        return True
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return False


class Cgroup:
    """One cgroup folder of the slot, reused job after job (one job at a time)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w", encoding="ascii") as handle:
            handle.write(value)

    def read(self, name):
        try:
            with open(os.path.join(self.path, name), encoding="ascii") as handle:
                return handle.read()
        except OSError:
            return ""

    def join(self):
        self.write("cgroup.procs", "0")

    def others(self):
        """The processes in the cgroup other than this launcher: the job's."""
        me = os.getpid()
        return [int(p) for p in self.read("cgroup.procs").split() if int(p) != me]
