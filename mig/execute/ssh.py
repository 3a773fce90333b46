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

import hashlib
import os
import secrets
import shlex
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import time

from mig.core.files import Home
from mig.core.jobspec import expand_variables
from mig.execute.base import Executor, Outcome
from mig.execute.jobscript import job_script
from mig.execute.staging import collect_outputs, stage_inputs, write_small
from mig.store.pickledb import atomic_write_bytes

CONNECT_TIMEOUT = 10
# A silent connection (a host or network that vanished without a word) is
# given up after ALIVE_INTERVAL * ALIVE_COUNT seconds.
ALIVE_INTERVAL, ALIVE_COUNT = 10, 3
# The resource stops a job at CPUTIME; the grid gives up waiting for it this
# much later (inputs and outputs travel meanwhile), should the resource not.
CPUTIME_GRACE = 300
SWEEP_TIMEOUT = 60
# Free space a finished job must leave in its folder, else the disk is full.
SPACE_PROBE = 65536
DISK_FULL = ("No space left on device", "Disk quota exceeded")
STARTED = b"mig-job-started"  # the remote side's word, on stderr, that the job runs now
SHORT_WRITE = ": Wrote only "  # all GNU tar says when a file it unpacks fills the disk
# ssh binds a ControlPath plus ".<16 random characters>" as a unix socket
# first (at most 107 bytes on Linux): longer paths go to a short folder.
CONTROL_PATH_MAX = 90
# Rounds of the kill sweep: a job that forks while it is swept is found again.
ZAP_ROUNDS = 30


def key_paths(ssh_dir):
    return os.path.join(ssh_dir, "id_ed25519"), os.path.join(ssh_dir, "id_ed25519.pub")


def ensure_grid_key(ssh_dir):
    """The grid's own ssh key pair, made once (resource owners authorize its .pub)."""
    private, public = key_paths(ssh_dir)
    if not os.path.exists(private):
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mig-appliance",
                        "-f", private], check=True, capture_output=True)
    return public


class Remote:
    """How to reach one resource."""

    def __init__(self, name, conf, ssh_dir):
        self.name = name
        self.lrms = conf["LRMSTYPE"]
        self.partitions = {u["name"]: u["partition"] for u in conf["EXECONFIG"]}
        self.host, self.port, self.user = conf["HOSTURL"], conf["SSHPORT"], conf["MIGUSER"]
        self.home = conf["RESOURCEHOME"].rstrip("/") or "."
        if self.home.startswith("-"):  # a record older than the check: never an option
            self.home = "./" + self.home
        self.known_hosts = os.path.join(ssh_dir, "known_hosts-%s" % name)
        host = self.host if self.port == 22 else "[%s]:%d" % (self.host, self.port)
        # Replaced whole (a job's ssh may be reading it while the owner edits the key).
        atomic_write_bytes(self.known_hosts, ("%s %s\n" % (host, conf["HOSTKEY"])
                                              if conf["HOSTKEY"] else "").encode(), durable=False)
        self.control = control_path(ssh_dir, name, self.host, self.port, self.user)
        self.key = key_paths(ssh_dir)[0]

    def ssh(self, command):
        return ["ssh", "-p", str(self.port), "-i", self.key, "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=%d" % CONNECT_TIMEOUT, "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=%s" % self.known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "ControlMaster=auto", "-o", "ControlPath=%s" % self.control,
                "-o", "ControlPersist=60", "-o", "KexAlgorithms=curve25519-sha256",
                "-o", "ServerAliveInterval=%d" % ALIVE_INTERVAL,
                "-o", "ServerAliveCountMax=%d" % ALIVE_COUNT,
                "%s@%s" % (self.user, self.host), command]

    def folder(self, job_id, token):
        """One run's folder, relative to the resolved RESOURCEHOME ($h there)."""
        return "job-%s.%s" % (job_id, token)

    def run_command(self, job_id, exe, spec):
        """The remote command that runs the job in its folder ($f, the current
        directory) and waits for it to end; a job stopped at its CPUTIME leaves
        a .timeout file there.  Every process of the job inherits MIGJOB=$f."""
        if self.lrms == "slurm":
            minutes = max(1, (int(spec["CPUTIME"]) + 59) // 60)
            # sbatch --wait returns when the batch job ends; the batch job is named
            # after the grid job, so a cancel finds it by name.  Slurm ends it at
            # --time, and then its state says TIMEOUT.  sbatch hands its
            # environment (MIGJOB too) to the batch job.
            # The batch job marks its start with a .started file; a watcher
            # says so on stderr (STARTED), so the grid knows a job that waits
            # in the batch queue from one that runs.
            return ("(while [ ! -e .started ] && kill -0 $$ 2>/dev/null; do sleep 1; done; "
                    "[ -e .started ] && echo %s >&2) &\n"
                    "id=$(MIGJOB=\"$f\" sbatch --parsable --wait --job-name=%s --partition=%s "
                    "--time=%d --nodes=%d --output=/dev/null --error=/dev/null --chdir=. "
                    "--wrap=': > .started; exec bash ./%s.job')\n"
                    "if [ -n \"$id\" ]; then case $(scontrol -o show job \"${id%%%%;*}\" "
                    "2>/dev/null) in *JobState=TIMEOUT*) : > .timeout;; esac; fi"
                    % (STARTED.decode(), shlex.quote(job_id), shlex.quote(self.partitions[exe]),
                       minutes, int(spec["NODECOUNT"]), job_id))
        # Its own session, so that one kill takes the whole group.  The watchdog
        # is in the group: it ends the job when CPUTIME is spent, and it goes,
        # with whatever the job left running, when the job ends (shell
        # builtins only after the job: no process per job for that).
        return ("echo %s >&2\n{ MIGJOB=\"$f\" setsid -w bash -c 'echo $$ > .pgid; "
                "(sleep %d; : > .timeout; kill -KILL 0) & exec bash ./%s.job'; } 2>/dev/null\n"
                "read g < .pgid && [ \"$g\" -gt 1 ] && kill -KILL -- \"-$g\" 2>/dev/null"
                % (STARTED.decode(), int(spec["CPUTIME"]), job_id))

    def _home_code(self, missing):
        """Shell code that sets $h to RESOURCEHOME resolved, or runs missing."""
        return "h=$(cd %s 2>/dev/null && pwd -P) || %s" % (shlex.quote(self.home), missing)

    def job_command(self, job_id, exe, spec, token):
        """The whole remote side of one job, on one connection: RESOURCEHOME
        must be MIGUSER's and closed to others, the run's folder is made fresh
        (0700, refused if it exists), the inputs arrive as a tar stream on
        stdin, the job runs, the disk must still have room, every process of
        the job is killed, and the folder goes back as a tar stream on stdout
        and is removed.  The shell notes its PID in .shell, so that a cancel
        or sweep stops it too."""
        home = shlex.quote(self.home)
        return "\n".join([
            # tar says only "Wrote only N of M bytes" when a file fills the disk
            "space() { { printf '%%%ds' '' > .space; } 2>/dev/null && : > .space || echo "
            "\"could not write %d bytes in $PWD $1: %s\" >&2; }"
            % (SPACE_PROBE, SPACE_PROBE, DISK_FULL[0]),
            "(umask 077 && mkdir -p %s) && %s" % (home, self._home_code("exit 1")),
            # a folder others may write to lets them swap a job's folder
            "case $(ls -ld \"$h\") in d????w*|d???????w*) false;; d*) [ -O \"$h\" ];; *) false;; "
            "esac || { echo \"RESOURCEHOME $h must be a folder of $(id -un) that no one else "
            "may write to: refused\" >&2; exit 1; }",
            "f=\"$h\"/%s" % shlex.quote(self.folder(job_id, token)),
            "mkdir -m 0700 \"$f\" && cd \"$f\" || exit 1",
            "echo $$ > .shell",
            "tar -xf - || { s=$?; space 'for the inputs'; cd / && rm -rf \"$f\"; exit $s; }",
            "{ %s\n} </dev/null >/dev/null" % self.run_command(job_id, exe, spec),
            "space 'after the job ran'",
            "cd /; " + _zap_code('"$f"|"$f"/*'),
            "tar -C \"$f\" -cf - .; s=$?; rm -rf \"$f\"; exit $s"])

    def _stop_folder(self):
        """Shell code that stops the job in folder $d: first the connection's
        shell (so that it removes nothing later), then the job's process group
        or batch job.  Only real process groups are signalled (a job could
        write 1 or 0 into its .pgid); the kill runs as MIGUSER, so a job that
        lies in these files reaches nothing it could not kill itself."""
        code = ('for q in .shell .pgid; do g=$(cat "$d/$q" 2>/dev/null) && '
                '[ "$g" -gt 1 ] 2>/dev/null && kill -KILL -- "-$g" 2>/dev/null; done; ')
        if self.lrms == "slurm":
            code += 'n=${d##*/job-}; scancel --name="${n%.*}" 2>/dev/null; '
        return code

    def _stop_all(self, folders, match, keep=""):
        """Shell code that stops the jobs in folders (a glob under $h), then
        every process marked for or working in a folder that the case
        patterns match names and keep does not, and removes the folders."""
        each = "for d in %s; do case \"$d\" in %s) continue;; esac; [ -d \"$d\" ] && " % (
            folders, keep or "''")
        return ("%s{ %s}; done; %s; %srm -rf \"$d\"; done; exit 0"
                % (each, self._stop_folder(), _zap_code(match, keep), each))

    def cancel_command(self, job_id):
        """Stop every run of the job on the resource and remove its folders."""
        return "%s; %s" % (self._home_code("exit 0"),
                           self._stop_all('"$h"/job-%s.*' % shlex.quote(job_id),
                                          _job_patterns(job_id)))

    def sweep_command(self, keep=()):
        """Stop and remove every job folder under RESOURCEHOME (what a crash of
        the appliance left there), and every process marked for one, except
        those of the jobs in keep (running)."""
        return "%s; %s" % (self._home_code("exit 0"),
                           self._stop_all('"$h"/job-*', '"$h"/job-*',
                                          "|".join(_job_patterns(job_id) for job_id in keep)))


def _job_patterns(job_id):
    """Case patterns for the paths in and under any run folder of the job."""
    run = '"$h"/job-%s' % shlex.quote(job_id)
    return "%s|%s.*|%s/*" % (run, run, run)


def control_path(ssh_dir, name, host, port, user):
    """The ControlMaster socket of one resource: named by a hash of all that
    tells resources apart (never cut to a common prefix), in ssh_dir, or in a
    private folder with a short path when ssh_dir's path is too long for a
    unix socket.  If that folder is not this user's alone: no master."""
    digest = hashlib.sha256(("%s\0%s\0%s\0%s" % (name, host, port, user)).encode()).hexdigest()
    path = os.path.join(ssh_dir, "cm-" + digest[:16])
    if len(path) <= CONTROL_PATH_MAX:
        return path
    short = os.path.join(tempfile.gettempdir(), "mig-cm-%d-%s" % (
        os.getuid(), hashlib.sha256(os.path.abspath(ssh_dir).encode()).hexdigest()[:12]))
    try:
        os.mkdir(short, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(short)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return "none"  # ssh then makes a connection of its own each time
    return os.path.join(short, "cm-" + digest[:16])


def _zap_code(match, keep=""):
    """Shell code that kills every process of MIGUSER whose MIGJOB marker or
    working folder the case patterns match names (and keep does not), round
    after round until a round finds none (a process that forks meanwhile is
    found in the next).  /proc shows a process's environment as it started:
    a job drops the marker only by starting a program without it."""
    return ("i=0; while [ $i -lt %d ]; do i=$((i+1)); hit=; for p in /proc/[0-9]*; do "
            "[ -O \"$p\" ] && [ \"${p#/proc/}\" != $$ ] || continue; "
            "m=$(tr '\\0' '\\n' 2>/dev/null < \"$p/environ\" | sed -n 's/^MIGJOB=//p'); "
            "c=$(readlink \"$p/cwd\" 2>/dev/null); c=${c%% (deleted)}; "
            "for x in \"$m\" \"$c\"; do case \"$x\" in ''%s) ;; %s) kill -KILL \"${p#/proc/}\" "
            "2>/dev/null && hit=1;; esac; done; done; [ -n \"$hit\" ] || break; done"
            % (ZAP_ROUNDS, "|" + keep if keep else "", match))


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
        home = Home(self.home_of(record["OWNER"]))
        shutil.rmtree(local, ignore_errors=True)
        os.makedirs(os.path.join(local, "in"), mode=0o700)
        staged = os.path.join(local, "in")
        io_status = stage_inputs(home, spec, staged)
        write_small(os.path.join(staged, job_id + ".job"), job_script(job_id, spec, unit.unit_id),
                    0o644)
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
