"""Remote resources over plain ssh: nothing is installed on the resource.

ssh runs with argument lists only, BatchMode, a connect timeout, the
resource's pinned host key as the only known host (no trust on first use)
and one ControlMaster connection per resource.  A job's inputs and script
travel in one tar stream into its own folder under RESOURCEHOME; the job
runs there in its own session (so a cancel kills the whole group); its
folder comes back as a tar stream, is unpacked with tarfile's safe 'data'
filter, the outputs are moved into the owner's home, and the remote folder
is removed.  A failed connection makes the job RETRY elsewhere.
"""

import io
import os
import shlex
import shutil
import subprocess
import tarfile
import threading

from mig.core.files import Home
from mig.core.jobspec import expand_variables
from mig.execute.base import Executor, Outcome
from mig.execute.jobscript import job_script
from mig.execute.staging import collect_outputs, stage_inputs, write_small

CONNECT_TIMEOUT = 10


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
        self.known_hosts = os.path.join(ssh_dir, "known_hosts-%s" % name)
        host = self.host if self.port == 22 else "[%s]:%d" % (self.host, self.port)
        write_small(self.known_hosts, "%s %s\n" % (host, conf["HOSTKEY"]) if conf["HOSTKEY"] else "")
        self.control = os.path.join(ssh_dir, "cm-%s" % name)[:90]
        self.key = key_paths(ssh_dir)[0]

    def ssh(self, command):
        return ["ssh", "-p", str(self.port), "-i", self.key, "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=%d" % CONNECT_TIMEOUT, "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=%s" % self.known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "ControlMaster=auto", "-o", "ControlPath=%s" % self.control,
                "-o", "ControlPersist=60", "-o", "KexAlgorithms=curve25519-sha256",
                "%s@%s" % (self.user, self.host), command]

    def folder(self, job_id):
        return "%s/job-%s" % (self.home, job_id)

    def run_command(self, job_id, exe, spec):
        """The remote command that runs the job and waits for it to end."""
        if self.lrms == "slurm":
            minutes = max(1, (int(spec["CPUTIME"]) + 59) // 60)
            # sbatch --wait returns when the batch job ends; the batch job is named
            # after the grid job, so a cancel finds it by name
            return ("sbatch --wait --quiet --job-name=%s --partition=%s --time=%d "
                    "--nodes=%d --output=/dev/null --error=/dev/null --chdir=. ./%s.job"
                    % (shlex.quote(job_id), shlex.quote(self.partitions[exe]),
                       minutes, int(spec["NODECOUNT"]), job_id))
        return "setsid -w bash -c 'echo $$ > .pgid; exec bash ./%s.job'" % job_id

    def cancel_command(self, job_id):
        folder = shlex.quote(self.folder(job_id))
        if self.lrms == "slurm":
            return "scancel --name=%s; rm -rf %s" % (shlex.quote(job_id), folder)
        return "test -f %s/.pgid && kill -KILL -- -$(cat %s/.pgid); rm -rf %s" % (
            folder, folder, folder)


def _tar_folder(folder):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in sorted(os.listdir(folder)):
            archive.add(os.path.join(folder, name), arcname=name)
    return buffer.getvalue()


class SshExecutor(Executor):
    kind = "ssh"

    def __init__(self, work_root, home_of, ssh_dir, resources):
        self.work_root, self.home_of, self.ssh_dir = work_root, home_of, ssh_dir
        os.makedirs(work_root, mode=0o700, exist_ok=True)
        self.remotes = {name: Remote(name, conf, ssh_dir) for name, conf in resources.items()}
        self.lock = threading.Lock()
        self.jobs = {}  # job_id -> (remote, local ssh process or None, cancelled flag list)

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

    def shutdown(self):
        for job_id in self.running():
            self.cancel(job_id)
        for remote in self.remotes.values():
            subprocess.run(["ssh", "-o", "ControlPath=%s" % remote.control, "-O", "exit",
                            "%s@%s" % (remote.user, remote.host)], capture_output=True, timeout=10)

    def _kill_remote(self, remote, job_id):
        subprocess.run(remote.ssh(remote.cancel_command(job_id)), capture_output=True, timeout=60)

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
        folder = shlex.quote(remote.folder(job_id))
        # One connection per job: the inputs and script arrive as a tar stream on
        # stdin, the job runs in its own session while the connection waits, and
        # the job folder goes back as a tar stream on stdout and is removed.
        state["proc"] = subprocess.Popen(
            remote.ssh("mkdir -p %s && tar -C %s -xf - && cd %s && "
                       "{ %s </dev/null >/dev/null 2>&1; cd / && tar -C %s -cf - . && rm -rf %s; }"
                       % (folder, folder, folder, remote.run_command(job_id, unit.name, spec),
                          folder, folder)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = state["proc"].communicate(_tar_folder(staged), timeout=spec["CPUTIME"])
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill_remote(remote, job_id)
            state["proc"].kill()
            out, err = state["proc"].communicate()
        if state["cancelled"]:
            return Outcome("RETRY", "cancelled")
        if timed_out:
            return Outcome("RETRY", "JOB TIMEOUT: the job ran longer than its CPUTIME of %d s "
                           "and was stopped" % spec["CPUTIME"])
        if state["proc"].returncode != 0:
            return self._failed(subprocess.CompletedProcess([], state["proc"].returncode, b"", err),
                                "could not run the job there, or lost the resource meanwhile")
        results = os.path.join(local, "out")
        os.makedirs(results)
        with tarfile.open(fileobj=io.BytesIO(out), mode="r") as archive:
            archive.extractall(results, filter="data")
        if not os.path.exists(os.path.join(results, job_id + ".status")):
            return Outcome("RETRY", "RESOURCE DIED: the job left no status on %s" % remote.name)
        return collect_outputs(home, job_id, spec, results, io_status)

    @staticmethod
    def _failed(result, what):
        reason = (result.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        detail = reason[-1] if reason else "exit code %s" % result.returncode
        if "host key" in " ".join(reason).lower() or "REMOTE HOST IDENTIFICATION" in " ".join(reason):
            detail = "the resource's host key does not match the pinned HOSTKEY: refused (%s)" \
                % detail
        return Outcome("RETRY", "RESOURCE DIED: %s: %s" % (what, detail), resource_down=True)
