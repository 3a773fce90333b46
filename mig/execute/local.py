"""The embedded local resource: jobs as local processes on the appliance host.

Each job gets a fresh folder under the work root, its inputs copied from the
owner's home (or fetched from an http(s) URL), and runs under a uid of its
own through a launcher (launcher.py): a root process per slot that forks the
job, limits it (processes, file size, memory, disk) and ends every process
of it when its shell ends.  CPUTIME is enforced by the watchdog here, which
asks the launcher to end the job.  Outputs are copied back to
``job_output/JOBID/`` and OUTPUTFILES to their home destinations, each
confined to the home, as new files of ours; the job folder is then emptied
for the next job.
"""

import contextlib
import functools
import itertools
import json
import logging
import os
import shutil
import subprocess
import threading
import time

from mig.core.beneath import open_beneath
from mig.core.home import Home
from mig.core.jobspec import expand_variables, split_file_line
from mig.core.quota import Quota, human_size
from mig.execute.base import Executor, Outcome
from mig.execute.isolation import (JobIdentities, cgroup_folders, default_uid_base,
                                   install_launcher, kill_cgroup_tree, kill_uid_range,
                                   launcher_command, launcher_settings)
from mig.execute.jobfolders import (SCRIPT, FolderPool, check_reachable, check_work_root,
                                    give_tree, write_in_place)
from mig.execute.jobthreads import Collector, Watchdog, Workers
from mig.execute.leftovers import kill_leftovers
from mig.store import fileio
from mig.execute.jobscript import job_script
from mig.execute.staging import collect_outputs, stage_inputs
from mig.execute.urlfetch import UrlFetcher
from mig.execute.runner import Request, RunnerPool

log = logging.getLogger("mig.local")
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SHELL", "TERM")
MB = 1024 * 1024
NOT_ISOLATED = ("the local resource runs only the admins' jobs: the appliance does not run "
                "as root, so jobs cannot get identities of their own here")


class Limits:
    """What the local resource allows one job, beside the job's own MEMORY and DISK."""

    def __init__(self, processes=256, default_disk_mb=10240, entries=100000, network=False,
                 tmp_mb=256, disk_interval=1.0, fetch_local=False):
        self.processes, self.default_disk_mb, self.entries = processes, default_disk_mb, entries
        self.network, self.tmp_mb, self.disk_interval = network, tmp_mb, disk_interval
        self.fetch_local = fetch_local  # input URLs may name loopback or this host


class LocalJob:
    """One job's run: what it needs from start to end, across threads."""

    __slots__ = ("job_id", "record", "unit", "done", "pid", "cancelled", "timed_out",
                 "request", "folder", "home", "spec", "io_status", "uid", "reason", "started")

    def __init__(self, record, unit, done):
        self.job_id, self.record, self.unit, self.done = record["JOB_ID"], record, unit, done
        self.pid, self.cancelled, self.timed_out, self.reason = 0, False, False, "-"
        self.started = 0.0  # epoch seconds of the real start; 0 while staged
        self.request = self.folder = self.home = self.spec = self.io_status = self.uid = None


def disk_full_outcome(what):
    """The appliance's disk is full: the job runs again later, and the local
    resource pauses (with a growing back-off) instead of using up the job's
    retries at once."""
    return Outcome("RETRY", "DISK FULL: %s (no space or no inodes left on the appliance's "
                   "disk)" % what, resource_down=True)


class LocalExecutor(Executor):
    """Runs jobs on this host.  As root, each job under an exclusive uid (see
    isolation.py); otherwise as the appliance's own user, in namespaces that
    hide the state folder where the kernel allows them."""

    kind = "local"

    def __init__(self, work_root, home_of, slots=0, limits=None, uid_base=0, uid_count=65536,
                 hide=(), may_run=None, quota=None):
        self.work_root = work_root
        self.home_of = home_of  # owner -> Home, or the home folder's path
        # Without root, jobs share our uid and so could reach each other: the
        # appliance then passes a check that lets only the admins' jobs run.
        self.may_run = may_run
        self.quota = quota or Quota()
        self.limits = limits or Limits()
        self.privileged = os.geteuid() == 0
        check_work_root(work_root)
        # A job may pass through the work root to its own folder, no more.
        os.chmod(work_root, 0o711 if self.privileged else 0o700)
        self.identities = None
        if self.privileged:
            self.identities = JobIdentities(uid_base or default_uid_base(work_root), uid_count)
        self.lock = threading.Lock()
        self.jobs = {}
        self.homes = {}  # owner -> Home: a home's real path is looked up once
        self.folders = FolderPool(work_root)
        self.watchdog = Watchdog(self._expire)
        self.workers = Workers("local-job")
        self.collector = Collector(self._finish)
        env = {k: os.environ[k] for k in SAFE_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.setdefault("LANG", "C.UTF-8")
        self.env = env
        tag = "mig-%x" % (self.identities.base if self.identities else os.getuid())
        self.cgroup, self.memcg = cgroup_folders(tag) if self.privileged else (None, None)
        self.hide = [os.path.abspath(h) for h in hide]
        self.launcher = install_launcher(work_root)
        self.slot_numbers = itertools.count()
        # One runner per slot (0: no limit); jobs staged ahead wait for a free one.
        self.runner_records = os.path.join(work_root, ".runners")
        os.makedirs(self.runner_records, mode=0o700, exist_ok=True)
        self.runners = RunnerPool(self._launcher_command, None, slots, self.runner_records,
                                  on_lost=self._lost)
        self.features = self.probe()
        if self.privileged and "jobs-view" not in self.features:
            check_reachable(work_root)  # jobs see the host's own paths

    # -- the launchers ------------------------------------------------------------
    def launcher_conf(self, slot=None):
        conf = {"work_root": self.work_root, "network": self.limits.network,
                "tmp_mb": self.limits.tmp_mb, "tmp_inodes": 16384, "hide": self.hide,
                "disk_interval": self.limits.disk_interval}
        if slot is not None:
            conf["cgroup"] = self.cgroup and os.path.join(self.cgroup, "slot-%d" % slot)
            conf["memcg"] = self.memcg and os.path.join(self.memcg, "slot-%d" % slot)
        return conf

    def _launcher_command(self):
        return (launcher_command(self.launcher),
                launcher_settings(self.launcher_conf(next(self.slot_numbers))))

    def summary(self):
        """One line on how jobs are kept apart here, for the admin at start."""
        if self.identities is not None:
            who = "each job under a uid of its own (%d-%d)" % (
                self.identities.base, self.identities.base + self.identities.count - 1)
        else:
            who = ("jobs run as this user, so only the admins' jobs run locally "
                   "(start as root to give every job its own uid)")
        return "local jobs: %s; isolation: %s; network: %s" % (
            who, self.features, "allowed" if self.limits.network else "none")

    def probe(self):
        """What isolation this host gives jobs, as the launcher reports it."""
        conf = dict(self.launcher_conf(), probe=True)
        try:
            result = subprocess.run(launcher_command(self.launcher), capture_output=True,
                                    input=launcher_settings(conf), timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return "none (%s)" % exc
        line = result.stdout.decode("ascii", "replace").strip().partition("ready ")[2]
        features = [f for f in line.split(",") if f and f != "-"]
        if self.privileged:
            features.insert(0, "uid-per-job")
            if self.cgroup:
                features.append("cgroup-kill")
        return ",".join(features) or "none"

    # -- contract -------------------------------------------------------------
    def start(self, record, unit, done):
        job = LocalJob(record, unit, done)
        with self.lock:
            self.jobs[job.job_id] = job
        if self.identities is None and self.may_run and not self.may_run(record["OWNER"]):
            self._end(job, Outcome("RETRY", NOT_ISOLATED))
            return
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
        if job.request is not None and not self.runners.end(job.request):
            self.runners.withdraw(job.request)  # still waiting for a slot

    def _expire(self, job):
        """The watchdog's call: the job's CPUTIME is spent."""
        if job.request is not None:
            self.runners.end(job.request)

    def running(self):
        with self.lock:
            return list(self.jobs)

    def started_at(self, job_id):
        with self.lock:
            job = self.jobs.get(job_id)
        return None if job is None else job.started

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
        self._end_every_process()
        for folder in (self.cgroup, self.memcg):  # emptied by _end_every_process
            with contextlib.suppress(OSError, TypeError):
                os.rmdir(folder)
        with contextlib.suppress(OSError):
            os.unlink(self.launcher)
            os.rmdir(self.runner_records)  # empty once every runner has stopped
            os.rmdir(self.work_root)  # only when empty: leftovers stay for recovery

    def recover_leftovers(self):
        """After a crash: stop every process a previous run left (its launchers,
        and every job's processes by cgroup and by uid), then remove every job
        folder it left.  Nothing of an old run keeps running beside a rerun."""
        with self.runners.lock:
            ours = {runner.proc.pid for runner in self.runners.all}
        kill_leftovers(self.runner_records, 0 if self.privileged else None, ours)
        self._end_every_process()
        for name in os.listdir(self.work_root):
            if not name.startswith("."):  # spares and the runner records stay
                self.recover(name)

    def _end_every_process(self):
        """Kill whatever runs under our job uids or in our cgroups (after a
        crash, or a launcher killed before it could end its job)."""
        if self.identities is not None:
            for folder in (self.cgroup, self.memcg):
                kill_cgroup_tree(folder)
            kill_uid_range(self.identities.base, self.identities.count)

    def recover(self, job_id):
        """Kill what a previous run of the appliance left of a job, and clean up."""
        shutil.rmtree(os.path.join(self.work_root, job_id), ignore_errors=True)

    def _home(self, owner):
        """The owner's Home: home_of gives one (with its VGrid shared folders), or
        the home's path."""
        found = self.homes.get(owner)
        if found is None:
            given = self.home_of(owner)
            if isinstance(given, Home):
                return given  # the grid keeps it (its shared folders change)
            found = self.homes[owner] = Home(given)
        return found

    def _lost(self, request):
        """A launcher died with a job: end that job's processes ourselves."""
        if request.job is not None and request.job.uid is not None:
            kill_uid_range(request.job.uid, 1)

    # -- one job: prepare, run, collect -------------------------------------------
    def _prepare(self, job):
        """Folder, inputs and script, then hand the job to a runner."""
        try:
            job.folder = self.folders.take(job.job_id)
            record, spec = job.record, job.record["SPEC"]
            if "+JOB" in record.get("MRSL", "+JOB"):
                spec = expand_variables(spec, job.job_id, spec.get("JOBNAME") or "")
            job.spec = spec
            job.home = self._home(record["OWNER"])
            job.io_status = stage_inputs(job.home, spec, job.folder, fetcher=UrlFetcher(
                self._disk_bytes(spec), allow_local=self.limits.fetch_local))
            write_in_place(job.folder, SCRIPT, job_script(job.job_id, spec, job.unit.unit_id,
                                                          enforce_memory=False,
                                                          re_values=job.unit.re_values))
            if self.identities is not None:
                job.uid = self.identities.take()
                give_tree(job.folder, job.uid, job.uid,
                          staged=bool(spec["INPUTFILES"] or spec["EXECUTABLES"]))
            if job.cancelled:
                self._end(job, Outcome("RETRY", "cancelled before start"))
                return
            job.request = Request(self._job_line(job), functools.partial(self._started, job),
                                  functools.partial(self._ended, job), job)
            self.runners.submit(job.request)  # runs now, or when a slot frees up
        except OSError as exc:
            self._end(job, disk_full_outcome("its folder could not be prepared")
                      if fileio.is_full(exc) else
                      Outcome("RETRY", "local resource error: %s" % exc))
        except Exception as exc:  # a broken job must never take the executor down
            self._end(job, Outcome("RETRY", "local resource error: %s" % exc))

    def _disk_bytes(self, spec):
        disk_gb = int(spec.get("DISK") or 0)
        return disk_gb * 1024 * MB if disk_gb > 0 else self.limits.default_disk_mb * MB

    def _job_line(self, job):
        spec = job.spec
        memory = (int(spec["MEMORY"]) + 16) * MB
        disk = self._disk_bytes(spec)
        # With these set, bash never looks the uid up (no account has it).
        env = dict(self.env, HOME=job.folder, TMPDIR=job.folder, USER="mig-job",
                   LOGNAME="mig-job", SHELL="/bin/bash")
        uid = job.uid if job.uid is not None else os.getuid()
        line = {"uid": uid, "gid": uid if job.uid is not None else os.getgid(),
                "folder": job.folder, "script": SCRIPT, "env": env, "memory": memory,
                "disk": disk, "entries": self.limits.entries,
                "rlimits": {"RLIMIT_AS": memory, "RLIMIT_FSIZE": disk, "RLIMIT_CORE": 0,
                            "RLIMIT_NPROC": self.limits.processes}}
        return (json.dumps(line) + "\n").encode()

    def _started(self, job, pid):
        """In the runners' event thread, as the job starts: start its CPUTIME clock."""
        job.pid = pid
        job.started = time.time()
        if job.cancelled:
            self.runners.end(job.request)
        self.watchdog.watch(job, job.spec["CPUTIME"])

    def _ended(self, job, code, reason):
        job.reason = reason
        self.collector.submit(job, code)

    def _finish(self, ended):
        """Jobs whose shell has ended (or never ran), as (job, exit code) pairs:
        collect their outputs, then report them together."""
        results = []
        for job, code in ended:
            try:
                outcome = self._collect(job, code)
            except OSError as exc:
                outcome = disk_full_outcome("its outputs could not be saved") \
                    if fileio.is_full(exc) else \
                    Outcome("RETRY", "local resource error: %s" % exc)
            except Exception as exc:
                outcome = Outcome("RETRY", "local resource error: %s" % exc)
            results.append((job, outcome))
        self._end_many(results)

    def _collect(self, job, code):
        self.watchdog.forget(job)
        if job.cancelled:
            return Outcome("RETRY", "cancelled")
        job_id, spec = job.job_id, job.spec
        if code is None or job.reason.startswith("error:"):
            return Outcome("RETRY", "the local resource could not run the job (%s)"
                           % (job.reason if code is not None else "its launcher ended"))
        if not os.path.exists(os.path.join(job.folder, job_id + ".status")):
            return Outcome("RETRY", "the job script could not start on the local resource")
        room = self.quota.room(job.home.root)  # None: no quota, nothing to weigh
        size = self._output_size(job) if room is not None else 0
        over = room is not None and size > room
        outcome = collect_outputs(job.home, job_id, spec, job.folder, job.io_status,
                                  job.uid if job.uid is not None else os.getuid(),
                                  keep_outputs=not over)
        if over:
            outcome.message = ("QUOTA: the job's outputs (%s) do not fit in the %s left of "
                               "%s's disk quota; they were not saved"
                               % (human_size(size), human_size(room), job.record["OWNER"]))
        elif size:
            self.quota.added(job.home.root, size)
        message = self._limit_message(job)
        if message:
            outcome.state, outcome.message = "RETRY", message
        return outcome

    def _output_size(self, job):
        """Bytes the job's outputs would add to the home (an estimate: the sizes
        now, read through the folder without following links)."""
        names = ["%s.%s" % (job.job_id, s) for s in ("stdout", "stderr", "status")]
        names += [split_file_line(line)[0] for line in job.spec["OUTPUTFILES"]]
        total = 0
        for name in names:
            try:
                total += os.stat(os.path.join(job.folder, name), follow_symlinks=False).st_size
            except (OSError, ValueError):
                continue
        return total

    def _limit_message(self, job):
        spec = job.spec
        if job.timed_out:
            return ("JOB TIMEOUT: the job ran longer than its CPUTIME of %d s and was stopped"
                    % spec["CPUTIME"])
        if job.reason == "disk":
            return ("DISK: the job's folder grew beyond its limit of %d MB (or %d files) and "
                    "the job was stopped" % (self._disk_bytes(spec) // MB, self.limits.entries))
        if job.reason == "memory":
            return ("MEMORY: the job used more than its MEMORY of %s MB and was stopped"
                    % spec["MEMORY"])
        return ""

    def _end(self, job, outcome):
        self._end_many([(job, outcome)])

    def _end_many(self, results):
        """Release the jobs' folders and uids, then report the outcomes of those
        not cancelled, several at once when the grid takes them so."""
        reports = {}
        for job, outcome in results:
            if job.folder is not None:
                try:
                    self.folders.give_back(job.folder)
                except Exception:
                    log.exception("could not recycle the job folder %s", job.folder)
            if job.uid is not None:
                self.identities.give_back(job.uid)
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
