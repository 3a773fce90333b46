"""The embedded local resource: jobs as local processes on the appliance host.

Each job gets a fresh folder under the state folder, its inputs copied from
the owner's home (or fetched from an http(s) URL), and one bash session in
its own process group.  CPUTIME is enforced by killing the whole group;
MEMORY by ``ulimit -v`` in the job script.  Outputs are copied back to
``job_output/JOBID/`` and OUTPUTFILES to their home destinations, each
confined to the home, and the job folder is removed.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import threading
import urllib.request

from mig.core.files import Home, copy_confined
from mig.core.jobspec import expand_variables, split_file_line
from mig.core.verify import verify_results
from mig.execute.base import Executor, Outcome
from mig.execute.jobscript import job_script, parse_status
from mig.errors import ConfigError

SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SHELL", "TERM")
URL_TIMEOUT = 60


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
    for root, dirs, files in os.walk(folder):
        os.chown(root, uid, gid)
        for name in files:
            os.lchown(os.path.join(root, name), uid, gid)


class LocalJob:
    __slots__ = ("job_id", "proc", "cancelled", "thread")

    def __init__(self, job_id):
        self.job_id, self.proc, self.cancelled, self.thread = job_id, None, False, None


class LocalExecutor(Executor):
    kind = "local"

    def __init__(self, work_root, home_of, run_as=""):
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

    # -- contract -------------------------------------------------------------
    def start(self, record, unit, done):
        job = LocalJob(record["JOB_ID"])
        with self.lock:
            self.jobs[job.job_id] = job
        job.thread = threading.Thread(target=self._run, args=(job, record, unit, done),
                                      name="job-%s" % job.job_id, daemon=True)
        job.thread.start()

    def cancel(self, job_id):
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            return
        job.cancelled = True
        if job.proc is not None:
            kill_group(job.proc.pid)

    def running(self):
        with self.lock:
            return list(self.jobs)

    def shutdown(self):
        for job_id in self.running():
            self.cancel(job_id)

    def recover(self, job_id):
        """Kill what a previous run of the appliance left of a job, and clean up."""
        folder = os.path.join(self.work_root, job_id)
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(folder, ".pgid"), encoding="ascii") as handle:
                kill_group(int(handle.read().strip()))
        shutil.rmtree(folder, ignore_errors=True)

    # -- one job ----------------------------------------------------------------
    def _run(self, job, record, unit, done):
        job_id = job.job_id
        folder = os.path.join(self.work_root, job_id)
        try:
            outcome = self._execute(job, record, unit, folder)
        except Exception as exc:  # a broken job must never take the executor down
            outcome = Outcome("RETRY", "local resource error: %s" % exc)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            with self.lock:
                self.jobs.pop(job_id, None)
        if not job.cancelled:
            done(job_id, outcome)

    def _execute(self, job, record, unit, folder):
        job_id, spec = job.job_id, record["SPEC"]
        spec = expand_variables(spec, job_id, spec.get("JOBNAME") or "")
        home = Home(self.home_of(record["OWNER"]))
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, mode=0o700)
        io_status = self._stage_inputs(home, spec, folder)
        script = os.path.join(folder, job_id + ".job")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(job_script(job_id, spec, unit.unit_id))
        env = {k: os.environ[k] for k in SAFE_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["HOME"] = folder
        env["TMPDIR"] = folder
        if job.cancelled:
            return Outcome("RETRY", "cancelled before start")
        identity = {}
        if self.account:
            uid, gid = self.account
            chown_tree(folder, uid, gid)
            identity = {"user": uid, "group": gid, "extra_groups": []}
        job.proc = subprocess.Popen(["/bin/bash", script], cwd=folder, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True,
                                    **identity)
        with open(os.path.join(folder, ".pgid"), "w", encoding="ascii") as handle:
            handle.write(str(job.proc.pid))
        if job.cancelled:
            kill_group(job.proc.pid)
        timed_out = False
        try:
            job.proc.wait(timeout=spec["CPUTIME"])
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_group(job.proc.pid)  # leftovers of the job (background processes) go too
        job.proc.wait()
        if job.cancelled:
            return Outcome("RETRY", "cancelled")
        if not os.path.exists(os.path.join(folder, job_id + ".status")):
            return Outcome("RETRY", "the job script could not start on the local resource "
                           "(exit code %s)" % job.proc.returncode)
        outcome = self._collect(home, job_id, spec, folder, io_status)
        if timed_out:
            outcome.state = "RETRY"
            outcome.message = ("JOB TIMEOUT: the job ran longer than its CPUTIME of %d s "
                               "and was stopped" % spec["CPUTIME"])
        return outcome

    def _stage_inputs(self, home, spec, folder):
        failures = {"INPUTFILES": 0, "EXECUTABLES": 0}
        for key in ("INPUTFILES", "EXECUTABLES"):
            for line in spec[key]:
                src, dst = split_file_line(line)
                if "://" in src and dst == src:
                    dst = src.split("://", 1)[1].lstrip("/")
                target = os.path.realpath(os.path.join(folder, dst))
                if not target.startswith(os.path.realpath(folder) + os.sep):
                    failures[key] += 1
                    continue
                os.makedirs(os.path.dirname(target), exist_ok=True)
                try:
                    if "://" in src:
                        self._fetch_url(src, target)
                    else:
                        source = home.resolve(src, must_exist=True)
                        shutil.copyfile(source, target)
                    if key == "EXECUTABLES":
                        os.chmod(target, 0o755)
                except Exception:  # counted in io-status, as MiG does
                    failures[key] += 1
        return [("get_input_files", failures["INPUTFILES"]),
                ("get_executables", failures["EXECUTABLES"])]

    @staticmethod
    def _fetch_url(url, target):
        if not url.lower().startswith(("http://", "https://", "ftp://")):
            raise ValueError("unsupported URL scheme")
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as response, \
                open(target, "wb") as out:
            shutil.copyfileobj(response, out)

    def _collect(self, home, job_id, spec, folder, io_status):
        out_dir = home.job_output_dir(job_id)
        os.makedirs(out_dir, exist_ok=True)
        missing = 0
        for line in spec["OUTPUTFILES"]:
            src, dst = split_file_line(line)
            if "://" in dst:
                missing += 1  # uploads to URLs are not supported by the local resource
                continue
            if copy_confined(folder, src, home, dst):
                missing += 1
        io_status = io_status + [("output_files_missing", missing), ("send_output_files", 0)]
        rel_out = home.relative(out_dir)
        for suffix in ("stdout", "stderr", "status"):
            name = "%s.%s" % (job_id, suffix)
            if copy_confined(folder, name, home, os.path.join(rel_out, name)):
                open(os.path.join(out_dir, name), "ab").close()
        with open(os.path.join(out_dir, job_id + ".io-status"), "w", encoding="utf-8") as handle:
            handle.writelines("%s %d\n" % item for item in io_status)
        with open(os.path.join(out_dir, job_id + ".status"), encoding="utf-8",
                  errors="replace") as handle:
            exit_codes = parse_status(handle.read())
        return Outcome("FINISHED", "", exit_codes, io_status,
                       verify_results(home, job_id, spec))


