"""Remote resources over plain ssh: nothing is installed on the resource.

ssh runs with argument lists only, BatchMode, a connect timeout, the
resource's pinned host key as the only known host (no trust on first use)
and one ControlMaster connection per resource.  A job's inputs and script
travel in one tar stream into a fresh private folder under RESOURCEHOME
(mode 0700, a random name per run, refused if it exists; RESOURCEHOME must
belong to MIGUSER and be closed to others); the job runs there in its own
session, every process of it marked with MIGJOB=<its folder> in its
environment; its folder comes back as a tar stream, is unpacked with
tarfile's safe 'data' filter, the outputs are moved into the owner's home,
and the remote folder is removed.  A failed connection makes the job RETRY
elsewhere.

When a job ends (or is cancelled or swept) its session is killed, and then
every process of MIGUSER that carries its marker or works in its folder:
that catches what left the session (setsid, double forks).  What drops the
marker and leaves the folder, or hides itself from MIGUSER's view of /proc,
is not found (docs/admin.md says more).

CPUTIME is enforced on the resource itself: a watchdog in the job's process
group kills the whole group when the time is spent (Slurm gets it as
--time), so nothing keeps running there when the connection is gone.  A
full disk there takes the resource out (it is sick, not the job).  After a
crash of the appliance, every job folder left under RESOURCEHOME is swept
(processes killed, folder removed) before the resource gets a new job.
"""

import os
import secrets
import shutil
import subprocess
import tarfile
import threading
import time

from mig.core.home import Home
from mig.core.jobspec import expand_variables
from mig.execute.base import Executor, Outcome
from mig.execute.jobscript import job_script
from mig.execute.sshremote import CONNECT_TIMEOUT, DISK_FULL, STARTED, Remote
from mig.execute.staging import collect_outputs, stage_inputs, write_small

# The resource stops a job at CPUTIME; the grid gives up waiting for it this
# much later (inputs and outputs travel meanwhile), should the resource not.
CPUTIME_GRACE = 300
SWEEP_TIMEOUT = 60
SHORT_WRITE = ": Wrote only "  # all GNU tar says when a file it unpacks fills the disk


def _disk_full(stderr):
    """What the resource said when its disk was full, or None."""
    lines = (stderr or b"").decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        if any(mark in line for mark in DISK_FULL):
            return line.strip()
    for line in reversed(lines):
        if SHORT_WRITE in line:
            return "the inputs did not fit (%s)" % line.strip()
    return None


def _send_tar(folder, stream):
    """Write the folder's files to stream as a tar stream, file by file (never
    the whole archive in memory), then close it; a connection that ends early
    is the reader's problem to report."""
    try:
        with tarfile.open(fileobj=stream, mode="w|") as archive:
            for name in sorted(os.listdir(folder)):
                archive.add(os.path.join(folder, name), arcname=name)
    except (OSError, ValueError):
        pass  # the other end went away: its exit status says why
    finally:
        try:
            stream.close()
        except OSError:
            pass


class _Tail:
    """The last bytes of a stream, read in a thread: what a failing remote
    command said last, in bounded memory however much it says.  The line
    STARTED is taken out and calls started() once: the job runs from then."""

    LIMIT = 64 * 1024

    def __init__(self, stream, started=lambda: None):
        self.data, self.started = b"", started
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        marker = STARTED + b"\n"
        for chunk in iter(lambda: stream.readline(8192), b""):
            if chunk == marker and self.started is not None:
                self.started()
                self.started = None
                continue
            self.data = (self.data + chunk)[-self.LIMIT:]
        stream.close()

    def result(self):
        self.thread.join()
        return self.data


class SshExecutor(Executor):
    kind = "ssh"

    def __init__(self, work_root, home_of, ssh_dir, resources):
        self.work_root, self.home_of, self.ssh_dir = work_root, home_of, ssh_dir
        os.makedirs(work_root, mode=0o700, exist_ok=True)
        self.remotes, self.confs = {}, {}
        self.set_resources(resources)
        self.lock = threading.Lock()
        self.jobs = {}  # job_id -> (remote, local ssh process or None, cancelled flag list)
        # Resources whose job folders from an earlier run are not swept yet
        # (name -> the Outcome of the last failed try and when, or None), and one
        # lock per resource: one sweep at a time, and its jobs wait for it.
        self.unswept, self.sweep_locks = {}, {}
        self.closing = False

    def set_resources(self, resources):
        """Follow the resource records ({name: conf}) while the grid runs.

        Unchanged resources keep their Remote (its known_hosts file is not
        rewritten under running jobs).  Jobs keep the Remote they started
        with, and a removed resource's Remote stays for a job handed out just
        before.  A resource whose address, user or host key changed gets a
        new ControlMaster; the old one ends when its jobs have."""
        from mig.execute.sshcontrol import retire_master
        old, old_confs = self.remotes, self.confs
        remotes = dict(old)
        for name, conf in resources.items():
            if old_confs.get(name) != conf:
                remotes[name] = Remote(name, conf, self.ssh_dir)
                if name in old and any(old_confs[name][key] != conf[key] for key in
                                       ("HOSTURL", "SSHPORT", "MIGUSER", "HOSTKEY")):
                    retire_master(old[name])
        self.remotes, self.confs = remotes, dict(old_confs, **resources)

    def start(self, record, unit, done):
        remote = self.remotes[unit.resource]
        state = {"proc": None, "cancelled": False}
        with self.lock:
            self.jobs[record["JOB_ID"]] = (remote, state)
        threading.Thread(target=self._run, args=(record, unit, remote, state, done),
                         name="ssh-%s" % record["JOB_ID"], daemon=True).start()

    def cancel(self, job_id):
        with self.lock:
            entry = self.jobs.get(job_id)
        if entry is None:
            return
        remote, state = entry
        state["cancelled"] = True
        self._kill_remote(remote, job_id)
        if state["proc"] is not None:
            state["proc"].kill()

    def running(self):
        with self.lock:
            return list(self.jobs)

    def started_at(self, job_id):
        """0 while the inputs travel or the job waits in the batch queue."""
        with self.lock:
            entry = self.jobs.get(job_id)
        return None if entry is None else entry[1].get("started", 0)

    def shutdown(self):
        self.closing = True
        for job_id in self.running():
            self.cancel(job_id)
        for remote in self.remotes.values():
            subprocess.run(["ssh", "-o", "ControlPath=%s" % remote.control, "-O", "exit",
                            "%s@%s" % (remote.user, remote.host)], capture_output=True, timeout=10)
        for folder in {os.path.dirname(r.control) for r in self.remotes.values()}:
            if os.path.basename(folder).startswith("mig-cm-"):  # the short one in /tmp
                try:
                    os.rmdir(folder)  # if no other process of this grid has a master there
                except OSError:
                    pass

    def _kill_remote(self, remote, job_id):
        subprocess.run(remote.ssh(remote.cancel_command(job_id)), capture_output=True, timeout=60)

    # -- after a crash of the appliance ------------------------------------------
    def recover_leftovers(self):
        """Sweep every resource in the background: what runs in job folders
        there is killed and the folders are removed.  Startup does not wait
        for it; a job placed on a resource waits for that resource's sweep,
        and one that could not reach it tries again first (so a resource that
        was down is cleaned when it comes back)."""
        for name in os.listdir(self.work_root):  # local copies of staged jobs
            shutil.rmtree(os.path.join(self.work_root, name), ignore_errors=True)
        with self.lock:
            remotes = list(self.remotes.values())
            self.unswept.update((remote.name, None) for remote in remotes)
        for remote in remotes:
            threading.Thread(target=self._sweep, args=(remote,), name="sweep-%s" % remote.name,
                             daemon=True).start()

    def recover(self, job_id):
        """Nothing of its own: the sweep that recover_leftovers started covers
        every job folder, also those of jobs whose start was never recorded."""

    def _sweep(self, remote):
        """None once the resource is swept, else the Outcome for a job that
        cannot start there.  A try that failed a moment ago is not repeated."""
        with self.lock:
            lock = self.sweep_locks.setdefault(remote.name, threading.Lock())
        with lock:
            with self.lock:
                if remote.name not in self.unswept:
                    return None
                failed = self.unswept[remote.name]
            if failed is not None and time.monotonic() - failed[0] < CONNECT_TIMEOUT:
                return failed[1]
            try:
                result = subprocess.run(remote.ssh(remote.sweep_command()), capture_output=True,
                                        stdin=subprocess.DEVNULL, timeout=SWEEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                result = subprocess.CompletedProcess([], -1, b"", b"no answer within %d s"
                                                     % SWEEP_TIMEOUT)
            with self.lock:
                if result.returncode == 0:
                    self.unswept.pop(remote.name, None)
                    return None
                outcome = self._failed(result, "could not clean up after an earlier run there")
                self.unswept[remote.name] = (time.monotonic(), outcome)
                return outcome

    def _run(self, record, unit, remote, state, done):
        job_id = record["JOB_ID"]
        local = os.path.join(self.work_root, job_id)
        try:
            outcome = self._execute(record, unit, remote, state, local)
        except Exception as exc:  # one job's trouble must not take the executor down
            outcome = Outcome("RETRY", "ssh resource error: %s" % exc)
        finally:
            shutil.rmtree(local, ignore_errors=True)
            with self.lock:
                self.jobs.pop(job_id, None)
        if not state["cancelled"]:
            done(job_id, outcome)

    def _execute(self, record, unit, remote, state, local):
        job_id = record["JOB_ID"]
        spec = expand_variables(record["SPEC"], job_id, record["SPEC"].get("JOBNAME") or "")
        given = self.home_of(record["OWNER"])
        home = given if isinstance(given, Home) else Home(given)
        shutil.rmtree(local, ignore_errors=True)
        os.makedirs(os.path.join(local, "in"), mode=0o700)
        staged = os.path.join(local, "in")
        io_status = stage_inputs(home, spec, staged)
        script = job_script(job_id, spec, unit.unit_id, re_values=unit.re_values)
        write_small(os.path.join(staged, job_id + ".job"), script, 0o644)
        if remote.name in self.unswept:  # after a crash: leftovers go first
            outcome = self._sweep(remote)
            if outcome is not None:
                return outcome
        if state["cancelled"]:
            return Outcome("RETRY", "cancelled")
        # One connection per job: the inputs and script arrive as a tar stream on
        # stdin, the job runs in its own session while the connection waits, and
        # the job folder goes back as a tar stream on stdout and is removed.
        # The resource stops the job at CPUTIME (Slurm only once the job has
        # left its queue, so the grid does not count the time there).
        proc = state["proc"] = subprocess.Popen(
            remote.ssh(remote.job_command(job_id, unit.name, spec, secrets.token_hex(8))),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Both tar streams go through bounded buffers: the inputs are written
        # file by file, the results unpacked as they arrive.
        errors = _Tail(proc.stderr, lambda: state.update(started=time.time()))
        feeder = threading.Thread(target=_send_tar, args=(staged, proc.stdin), daemon=True)
        feeder.start()
        expired = []

        def stop():
            expired.append(True)
            self._kill_remote(remote, job_id)
            proc.kill()
        timer = None
        if remote.lrms != "slurm":
            timer = threading.Timer(spec["CPUTIME"] + CPUTIME_GRACE, stop)
            timer.daemon = True
            timer.start()
        results = os.path.join(local, "out")
        os.makedirs(results)
        unpacked = True
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                archive.extractall(results, filter="data")
        except (tarfile.TarError, OSError, EOFError):
            unpacked = False  # nothing (the command failed) or cut short
        finally:
            # Read to the end: tar pads its stream after the end-of-archive
            # marker, and a closed pipe would make the remote tar fail.
            try:
                while proc.stdout.read(65536):
                    pass
            except OSError:
                pass
            proc.stdout.close()
            proc.wait()
            if timer is not None:
                timer.cancel()
            feeder.join()
        err, timed_out = errors.result(), bool(expired)
        if state["cancelled"]:
            if not self.closing:  # again, now that the connection is over: a cancel
                self._kill_remote(remote, job_id)  # while it started found nothing yet
            return Outcome("RETRY", "cancelled")
        full = _disk_full(err)
        if full:
            return Outcome("RETRY", "disk full on resource %s: %s" % (remote.name, full),
                           resource_down=True)
        timeout = Outcome("RETRY", "JOB TIMEOUT: the job ran longer than its CPUTIME of %d s "
                          "and was stopped" % spec["CPUTIME"])
        if timed_out:
            return timeout
        if proc.returncode != 0:
            return self._failed(subprocess.CompletedProcess([], proc.returncode, b"", err),
                                "could not run the job there, or lost the resource meanwhile")
        if not unpacked:
            return Outcome("RETRY", "RESOURCE DIED: the job's folder did not come back whole "
                           "from %s" % remote.name, resource_down=True)
        timed_out = os.path.exists(os.path.join(results, ".timeout"))
        if not os.path.exists(os.path.join(results, job_id + ".status")):
            return timeout if timed_out else Outcome(
                "RETRY", "RESOURCE DIED: the job left no status on %s" % remote.name)
        outcome = collect_outputs(home, job_id, spec, results, io_status)
        if timed_out:  # its outputs so far are kept, as on the local resource
            return Outcome("RETRY", timeout.message, outcome.exit_codes, outcome.io_status)
        return outcome

    @staticmethod
    def _failed(result, what):
        reason = (result.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        detail = reason[-1] if reason else "exit code %s" % result.returncode
        if "host key" in " ".join(reason).lower() or "REMOTE HOST IDENTIFICATION" in " ".join(reason):
            detail = "the resource's host key does not match the pinned HOSTKEY: refused (%s)" \
                % detail
        return Outcome("RETRY", "RESOURCE DIED: %s: %s" % (what, detail), resource_down=True)
