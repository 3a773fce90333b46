"""The embedded local resource: jobs as local processes on the appliance host.

Each job gets a fresh folder under the state folder, its inputs copied from
the owner's home (or fetched from an http(s) URL), and one bash session in
its own process group.  CPUTIME is enforced by killing the whole group;
MEMORY by ``ulimit -v`` in the job script.  Outputs are copied back to
``job_output/JOBID/`` and OUTPUTFILES to their home destinations, each
confined to the home, and the job folder is removed.
"""

import contextlib
import functools
import heapq
import itertools
import logging
import os
import pwd
import queue
import shutil
import signal
import threading
import time

from mig.core.files import Home, open_beneath
from mig.core.jobspec import expand_variables
from mig.execute.base import Executor, Outcome
from mig.execute.jobfolders import SCRIPT, FolderPool, write_in_place
from mig.execute.leftovers import kill_leftovers
from mig.execute.jobscript import job_script
from mig.execute.staging import collect_outputs, stage_inputs
from mig.execute.runner import Request, RunnerPool
from mig.errors import ConfigError

log = logging.getLogger("mig.local")
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SHELL", "TERM")


def kill_group(pgid):
    """SIGKILL a whole process group; quietly fine if it is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def job_account(name):
    """(uid, gid) of the unprivileged job user, or None to run as ourselves."""
    if not name or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError("local_job_user %r does not exist on this host: create it or set "
                          "another user in config.ini" % name) from None
    if entry.pw_uid == 0:
        raise ConfigError("local_job_user must not be root")
    return entry.pw_uid, entry.pw_gid


def check_reachable(folder):
    """The job user must be able to pass through every folder above its own."""
    path = os.path.dirname(os.path.abspath(folder))
    while True:
        if not os.stat(path).st_mode & 0o001:
            raise ConfigError("the job folder %s is not reachable by the job user because %s "
                              "is closed to others: set work_dir in config.ini to a folder "
                              "below world-traversable folders" % (folder, path))
        if path == os.path.dirname(path):
            return
        path = os.path.dirname(path)


def chown_tree(folder, uid, gid):
    """Give the staged files to the job user; the script stays ours."""
    for root, dirs, files in os.walk(folder):
        os.chown(root, uid, gid)
        for name in files:
            if root == folder and name == SCRIPT:
                continue
            os.lchown(os.path.join(root, name), uid, gid)


class Watchdog:
    """One thread that kills jobs whose CPUTIME is spent (a Timer per job costs a thread)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.deadlines = []  # heap of (deadline, sequence, job)
        self.sequence = itertools.count()
        self.thread = None

    def watch(self, job, seconds):
        entry = (time.monotonic() + seconds, next(self.sequence), job)
        with self.cond:
            earliest = not self.deadlines or entry < self.deadlines[0]
            heapq.heappush(self.deadlines, entry)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
                self.thread.start()
            if earliest:  # otherwise the thread already wakes early enough
                self.cond.notify()

    def forget(self, job):
        with self.cond:
            self.deadlines = [d for d in self.deadlines if d[2] is not job]
            heapq.heapify(self.deadlines)

    def _loop(self):
        while True:
            with self.cond:
                while not self.deadlines:
                    self.cond.wait()
                deadline, _seq, job = self.deadlines[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self.cond.wait(delay)
                    continue
                heapq.heappop(self.deadlines)
            job.timed_out = True
            if job.pgid:
                kill_group(job.pgid)


class LocalJob:
    """One job's run: what it needs from start to end, across threads."""

    __slots__ = ("job_id", "record", "unit", "done", "pgid", "cancelled", "timed_out",
                 "request", "folder", "home", "spec", "io_status")

    def __init__(self, record, unit, done):
        self.job_id, self.record, self.unit, self.done = record["JOB_ID"], record, unit, done
        self.pgid, self.cancelled, self.timed_out = 0, False, False
        self.request = self.folder = self.home = self.spec = self.io_status = None


class Workers:
    """Threads that are reused from job to job (starting a thread per job costs
    a clone and a round of GIL hand-offs); a new one only when none is idle."""

    def __init__(self, name):
        self.name = name
        self.tasks = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.idle = 0

    def submit(self, function, *args):
        with self.lock:
            spawn = self.idle == 0
            if not spawn:
                self.idle -= 1  # that idle thread takes this task
        self.tasks.put((function, args))
        if spawn:
            threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def _loop(self):
        while True:
            function, args = self.tasks.get()
            try:
                function(*args)
            except Exception:  # the thread stays for the next job
                log.exception("a local job worker failed")
            with self.lock:
                self.idle += 1


class Collector:
    """One thread that finishes the jobs handed to it in batches: all that
    ended while it worked on the previous batch go together (so their
    results share one journal sync)."""

    BATCH = 64

    def __init__(self, finish):
        self.finish = finish  # called with a list of (job, exit code)
        self.queue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread = None

    def submit(self, job, code):
        self.queue.put((job, code))
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, name="local-collect",
                                                   daemon=True)
                    self.thread.start()

    def _loop(self):
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.finish(batch)
            except Exception:  # the thread stays for the next jobs
                log.exception("finishing local jobs failed")


class LocalExecutor(Executor):
    kind = "local"

    def __init__(self, work_root, home_of, run_as="", slots=0):
        self.work_root = work_root
        self.home_of = home_of  # owner -> home folder path
        self.account = job_account(run_as)
        os.makedirs(work_root, mode=0o700, exist_ok=True)
        # The job user may pass through the work root to its own folder, no more.
        os.chmod(work_root, 0o711 if self.account else 0o700)
        if self.account:
            check_reachable(work_root)
        self.lock = threading.Lock()
        self.jobs = {}
        self.homes = {}  # owner -> (Home, same disk): a home's real path is looked up once
        self.work_device = os.stat(work_root).st_dev
        self.folders = FolderPool(work_root)
        self.watchdog = Watchdog()
        self.workers = Workers("local-job")
        self.collector = Collector(self._finish)
        env = {k: os.environ[k] for k in SAFE_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        prefix = []
        if self.account:
            # Runners start once as the job user, so no per-job privilege drop.
            uid, gid = self.account
            prefix = [SETPRIV, "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "--"]
        # One runner per slot (0: no limit); jobs staged ahead wait for a free one.
        self.runner_records = os.path.join(work_root, ".runners")
        os.makedirs(self.runner_records, mode=0o700, exist_ok=True)
        self.runners = RunnerPool(prefix, env, slots, self.runner_records)

    # -- contract -------------------------------------------------------------
    def start(self, record, unit, done):
        job = LocalJob(record, unit, done)
        with self.lock:
            self.jobs[job.job_id] = job
        spec = record["SPEC"]
        if spec["INPUTFILES"] or spec["EXECUTABLES"]:
            self.workers.submit(self._prepare, job)  # copies and downloads take a while
        else:
            self._prepare(job)  # a folder and a script: quicker than a thread hand-off

    def cancel(self, job_id):
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            return
        job.cancelled = True
        if job.pgid:
            kill_group(job.pgid)
        elif job.request is not None:
            self.runners.withdraw(job.request)  # still waiting for a slot

    def running(self):
        with self.lock:
            return list(self.jobs)

    def live_output(self, job_id, suffix="stdout", limit=64 * 1024):
        """The last bytes a running job wrote to its stdout/stderr, or None."""
        with self.lock:
            if job_id not in self.jobs:
                return None
        try:
            # The job owns its folder: never follow a link it may have put there.
            with open_beneath(os.path.join(self.work_root, job_id),
                              "%s.%s" % (job_id, suffix)) as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - limit))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def shutdown(self):
        for job_id in self.running():
            self.cancel(job_id)
        self.runners.close()
        deadline = time.monotonic() + 10
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)  # let cancelled jobs remove their folders
        self.folders.close()
        with contextlib.suppress(OSError):
            os.rmdir(self.runner_records)  # empty once every runner has stopped
            os.rmdir(self.work_root)  # only when empty: leftovers stay for recovery

    def recover_leftovers(self):
        """After a crash: stop the jobs a previous run left running, and remove
        every job folder it left."""
        with self.runners.lock:
            ours = {runner.proc.pid for runner in self.runners.all}
        kill_leftovers(self.runner_records, self.account[0] if self.account else None, ours)
        for name in os.listdir(self.work_root):
            if not name.startswith("."):  # spares and the runner records stay
                self.recover(name)

    def recover(self, job_id):
        """Kill what a previous run of the appliance left of a job, and clean up."""
        shutil.rmtree(os.path.join(self.work_root, job_id), ignore_errors=True)

    def _home(self, owner):
        """(Home, whether its outputs move by rename from our job folders)."""
        found = self.homes.get(owner)
        if found is None:
            home = Home(self.home_of(owner))
            try:
                same_disk = os.stat(home.root).st_dev == self.work_device
            except OSError:
                same_disk = False
            found = self.homes[owner] = (home, same_disk)
        return found

    # -- one job: prepare, run, collect -------------------------------------------
    def _prepare(self, job):
        """Folder, inputs and script, then hand the job to a runner."""
        try:
            job.folder = self.folders.take(job.job_id)
            record, spec = job.record, job.record["SPEC"]
            if "+JOB" in record.get("MRSL", "+JOB"):
                spec = expand_variables(spec, job.job_id, spec.get("JOBNAME") or "")
            job.spec = spec
            job.home, same_disk = self._home(record["OWNER"])
            job.io_status = stage_inputs(job.home, spec, job.folder)
            staged = bool(spec["INPUTFILES"] or spec["EXECUTABLES"])
            write_in_place(job.folder, SCRIPT, job_script(job.job_id, spec, job.unit.unit_id))
            if self.account:
                if staged:
                    chown_tree(job.folder, *self.account)
                else:  # the script may stay ours (bash only reads it): no walk needed
                    os.chown(job.folder, *self.account)
            if job.cancelled:
                self._end(job, Outcome("RETRY", "cancelled before start"))
                return
            # With homes on our disk, collecting is a few renames: one collector
            # thread does them in batches.  Copies to another disk go to workers.
            ended = (functools.partial(self.collector.submit, job) if same_disk else
                     functools.partial(self.workers.submit, self._finish_one, job))
            job.request = Request(job.folder, SCRIPT, functools.partial(self._started, job),
                                  ended)
            self.runners.submit(job.request)  # runs now, or when a slot frees up
        except Exception as exc:  # a broken job must never take the executor down
            self._end(job, Outcome("RETRY", "local resource error: %s" % exc))

    def _started(self, job, pgid):
        """In the runners' event thread, as the job starts: keep its process
        group for cancel and time-out, and start the CPUTIME clock."""
        job.pgid = pgid
        if job.cancelled:
            kill_group(pgid)
        self.watchdog.watch(job, job.spec["CPUTIME"])

    def _finish_one(self, job, code):
        self._finish([(job, code)])

    def _finish(self, ended):
        """Jobs whose bash has ended (or never ran), as (job, exit code) pairs:
        collect their outputs, then report them together."""
        results = []
        for job, _code in ended:
            try:
                outcome = self._collect(job)
            except Exception as exc:
                outcome = Outcome("RETRY", "local resource error: %s" % exc)
            results.append((job, outcome))
        self._end_many(results)

    def _collect(self, job):
        self.watchdog.forget(job)
        timed_out = job.timed_out
        if job.pgid:
            kill_group(job.pgid)  # leftovers of the job (background processes) go too
        if job.cancelled:
            return Outcome("RETRY", "cancelled")
        job_id, spec = job.job_id, job.spec
        if not os.path.exists(os.path.join(job.folder, job_id + ".status")):
            return Outcome("RETRY", "the job script could not start on the local resource")
        outcome = collect_outputs(job.home, job_id, spec, job.folder, job.io_status)
        if timed_out:
            outcome.state = "RETRY"
            outcome.message = ("JOB TIMEOUT: the job ran longer than its CPUTIME of %d s "
                               "and was stopped" % spec["CPUTIME"])
        return outcome

    def _end(self, job, outcome):
        self._end_many([(job, outcome)])

    def _end_many(self, results):
        """Release the jobs' folders, then report the outcomes of those not
        cancelled, several at once when the grid takes them so."""
        reports = {}
        for job, outcome in results:
            if job.folder is not None:
                try:
                    self.folders.give_back(job.folder)
                except Exception:
                    log.exception("could not recycle the job folder %s", job.folder)
            with self.lock:
                self.jobs.pop(job.job_id, None)
            if not job.cancelled:
                reports.setdefault(job.done, []).append((job.job_id, outcome))
        for done, items in reports.items():
            many = getattr(done, "many", None)
            if many is not None:
                many(items)
            else:
                for job_id, outcome in items:
                    done(job_id, outcome)
