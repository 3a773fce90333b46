"""The job launcher: a small root process that starts local jobs, one at a time,
each under its own identity, and makes sure nothing of a job outlives it.

It runs as its own program (``python3 -I -S launcher.py``, its settings as
the first line in), not inside the appliance: forking a small process per job is cheap, and the appliance's
many threads and large memory stay out of the job's way.  At start it moves
itself into namespaces of its own where the host allows (no network, a
read-only view of the host except the work folders, private /tmp, /var/tmp
and /dev/shm, a /proc that hides other users' processes, private SysV IPC),
so every job it starts inherits them for free.

Per job (one JSON line in): fork; the child joins the slot's cgroups, takes
the job's rlimits, drops every group and becomes the job's exclusive uid,
with no way to regain privileges, then runs bash on the job script.  While
the job runs, the launcher watches the job folder's disk use and listens for
``kill`` from the appliance.  When the job's shell ends, every process left
of the job is killed: through the slot's cgroup (cgroup.kill) where cgroup
v2 is mounted, else as the job's uid with kill(-1) until none is left.  The
launcher is a child subreaper, so escaped processes are reparented to it and
reaped here.  Reports (lines out): ``ready FEATURES`` once, ``start PID`` and
``done PID EXITCODE REASON`` per job (REASON: ``-``, ``disk`` or ``memory``).

When the appliance dies, the launcher's input ends: it kills the running
job and exits, so no job ever runs twice side by side with its rerun.

Standard library only, and nothing imported from the appliance: this file is
also read as plain text and run from the zipapp, with namespaces.py (the
confinement it sets up) pasted above it by install_launcher.
"""

import gc
import json
import os
import resource
import select
import signal
import sys
import time

LAUNCHER_MEMORY = 32 * 1024 * 1024  # what the launcher itself may use of its slot's memcg

if __name__ != "__main__":  # run as a program, namespaces.py is pasted above instead
    from .namespaces import (PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS,
                             Cgroup, Sandbox, folder_use, prctl)


class Launcher:
    def __init__(self, conf):
        self.conf = conf
        self.sandbox = Sandbox(conf)
        self.cgroup = self.memcg = None
        self.inbuf = b""
        self.session = 0
        self.limit = self.ooms = None  # the slot's memory limit and OOM kills so far
        self.privileged = os.geteuid() == 0
        self.null = os.open("/dev/null", os.O_RDWR)
        self.lines = []
        self.eof = False

    # -- set-up -----------------------------------------------------------------
    def setup(self):
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        self.sandbox.enter()
        prctl(PR_SET_DUMPABLE, 0)  # nobody may read our memory or /proc files
        prctl(PR_SET_NO_NEW_PRIVS, 1)  # inherited: no job regains privileges by exec
        features = list(self.sandbox.features)
        # The launcher lives in its slot's cgroups, so each job is born in them:
        # moving a process between cgroups costs a kernel grace period (about
        # half a millisecond), forking inside one costs nothing.
        if self.conf.get("cgroup"):
            try:
                self.cgroup = Cgroup(self.conf["cgroup"])
                self.cgroup.join()
                features.append("cgroup")
            except OSError as exc:
                features.append("no-cgroup(%s)" % (exc.strerror or exc).replace(" ", "_"))
                self.cgroup = None
        if self.conf.get("memcg"):
            try:
                self.memcg = Cgroup(self.conf["memcg"])
                self.memcg.write("memory.limit_in_bytes", "-1")
                self.memcg.join()
                self._oom_score("-1000")  # the job's processes go first, not us
                self.ooms = self._oom_kills()
                features.append("memcg")
            except OSError as exc:
                features.append("no-memcg(%s)" % (exc.strerror or exc).replace(" ", "_"))
                self.memcg = None
        self.report("ready %s" % (",".join(features) or "-"))

    @staticmethod
    def _oom_score(value):
        """Best effort: lowering it needs CAP_SYS_RESOURCE, which some hosts withhold."""
        try:
            fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
            try:
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except OSError:
            pass

    def report(self, line):
        data = (line + "\n").encode()
        while data:
            data = data[os.write(1, data):]

    # -- input ------------------------------------------------------------------
    def _fill(self, timeout=None):
        """Read what the appliance sent; False when nothing came in time."""
        ready, _, _ = select.select([0], [], [], timeout)
        if not ready:
            return False
        data = os.read(0, 65536)
        if not data:
            self.eof = True
            return True
        parts = (self.inbuf + data).split(b"\n")
        self.inbuf = parts.pop()
        self.lines += parts
        return True

    def next_line(self):
        while not self.lines and not self.eof:
            self._fill()
        return self.lines.pop(0) if self.lines else None

    # -- one job ----------------------------------------------------------------
    def run(self, job):
        uid, gid = int(job["uid"]), int(job["gid"])
        if uid <= 0 or gid <= 0:
            raise ValueError("refusing to run a job as root")
        if self.memcg is not None:
            self._memory_limit(job["memory"] + LAUNCHER_MEMORY)
        seen = self.sandbox.seen
        plan = (seen(job["folder"]), {k: seen(v) for k, v in job["env"].items()},
                [(getattr(resource, name), value) for name, value in job["rlimits"].items()],
                ["bash", "--noprofile", "--norc", job["script"]])
        pid = os.fork()
        if pid == 0:
            self._child(plan, uid, gid)
        self.session = pid  # the child leads a session of its own
        self.report("start %d" % pid)
        reason = self._watch(pid, job, uid)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.sweep(uid)
        if reason == "-" and folder_use(job["folder"], job["disk"], job["entries"]):
            reason = "disk"
        if self.memcg is not None:
            ooms, self.ooms = self.ooms, self._oom_kills()
            if reason == "-" and self.ooms > ooms:
                reason = "memory"
        self.sandbox.clean_tmp()
        self.report("done %d %d %s" % (pid, code, reason))

    def _child(self, plan, uid, gid):
        """In the forked child: become the job and run its script (never returns).

        Everything was worked out before the fork: each Python object the
        child touches is a page the kernel has to copy."""
        cwd, env, limits, argv = plan
        try:
            os.setsid()
            if self.memcg is not None:
                self._oom_score("0")
            os.chdir(cwd)
            for fd in (0, 1, 2):
                os.dup2(self.null, fd)
            for limit, value in limits:
                resource.setrlimit(limit, (value, value))
            if self.privileged:
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)
            os.umask(0o077)
            os.execve("/bin/bash", argv, env)
        except BaseException:
            pass
        os._exit(127)

    def _watch(self, pid, job, uid):
        """Until the job's shell ends: follow kill requests, check its disk use."""
        pidfd = os.pidfd_open(pid)
        reason = "-"
        interval = float(self.conf.get("disk_interval", 1.0))
        next_check = time.monotonic() + interval
        try:
            while True:
                wait = max(0.0, next_check - time.monotonic())
                ready, _, _ = select.select([pidfd] + ([] if self.eof else [0]), [], [], wait)
                if pidfd in ready:
                    return reason
                if 0 in ready:
                    self._fill(0)
                    if self.eof or any(line.strip() == b"kill" for line in self.lines):
                        self.lines = [line for line in self.lines if line.strip() != b"kill"]
                        self.signal_all(uid)
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + interval
                    if folder_use(job["folder"], job["disk"], job["entries"]):
                        reason = "disk"
                        self.signal_all(uid)
        finally:
            os.close(pidfd)

    def _memory_limit(self, limit):
        """The slot's memory limit for the next job; the previous job's page
        cache may still be charged to it, so empty it when the limit is refused."""
        if limit == self.limit:
            return
        self.limit = limit
        try:
            self.memcg.write("memory.limit_in_bytes", str(limit))
        except OSError:
            try:
                self.memcg.write("memory.force_empty", "0")
                self.memcg.write("memory.limit_in_bytes", str(limit))
            except OSError:
                pass

    def _oom_kills(self):
        for line in self.memcg.read("memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return int(self.memcg.read("memory.failcnt").strip() or 0)

    # -- ending every process of a job ---------------------------------------------
    def signal_all(self, uid):
        """SIGKILL every process of the running job once; the job's shell is
        reaped by run(), the rest by the sweep that follows."""
        if self.cgroup is not None:
            self._kill_listed()
            return
        self._kill_uid(uid, once=True)

    def sweep(self, uid):
        """Kill every process of the job; reap the ones that were reparented to us."""
        if self.cgroup is not None:
            deadline = time.monotonic() + 10
            while self._kill_listed() and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.001)
        else:  # without a cgroup, the uid is what holds the job's processes together
            self._kill_uid(uid)
        self._reap()

    def _kill_listed(self):
        """SIGKILL every process in the slot's cgroup but us; how many there were.

        A pid is opened as a pidfd first and signalled only if the cgroup
        still lists it then: a pid reused by a process elsewhere is never
        signalled (it cannot be reused while the pidfd holds its process)."""
        pids = self.cgroup.others()
        if not pids:
            return 0
        held = []
        for pid in pids:
            try:
                held.append((pid, os.pidfd_open(pid)))
            except OSError:
                continue
        still = set(self.cgroup.others())
        for pid, fd in held:
            try:
                if pid in still:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(fd)
        return len(pids)

    def _kill_uid(self, uid, once=False):
        """kill(-1) as the job's uid reaches every process of it and nothing else;
        repeated while any process of the uid is left (a fork racing the kill).
        Without root the uid is our own (and the appliance's): only the job's
        session can be ended then."""
        if os.geteuid() != 0:
            if self.session:
                try:
                    os.killpg(self.session, signal.SIGKILL)
                except OSError:
                    pass
            return
        for _ in range(1000):
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgroups([])
                    os.setresuid(uid, uid, uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            if once:
                return
            self._reap()
            if not self._has_processes(uid):
                return

    @staticmethod
    def _has_processes(uid):
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.stat("/proc/" + name).st_uid == uid:
                        with open("/proc/%s/stat" % name, "rb") as handle:
                            if handle.read().rpartition(b")")[2].split()[0] != b"Z":
                                return True
                except OSError:
                    continue
        return False

    @staticmethod
    def _reap():
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    # -- the loop -------------------------------------------------------------------
    def serve(self):
        while True:
            line = self.next_line()
            if line is None:
                return
            line = line.strip()
            if not line or line == b"kill":
                continue
            job = json.loads(line)
            try:
                self.run(job)
            except Exception as exc:  # the appliance learns of it as a failed start
                self.report("done 0 127 error:%s" % str(exc).replace(" ", "_")[:200])


def main():
    # Few objects live long here and none in cycles; a collection in a forked
    # child would touch (and so copy) every page of the heap.
    gc.disable()
    conf = json.loads(sys.stdin.buffer.raw.readline() if len(sys.argv) < 2 else sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    launcher = Launcher(conf)
    launcher.setup()
    if conf.get("probe"):
        return
    launcher.serve()


if __name__ == "__main__":
    main()
