"""A Slurm cluster as a grid resource: a real single-node Slurm (munge,
slurmctld, slurmd) started here, reached through sshd on loopback."""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import exit_code, require_tool, wait_for
from test_ssh_resources import (USER, Sshd, descendants, job_info, kill_tree, need_root,
                                only_remote_resources, still_running, submit, state_of,
                                assert_ran_again_once, remove_leftovers, monitor_entry)

SLURM_CONF = """\
ClusterName=grid
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={s}/state
SlurmdSpoolDir={s}/spool
SlurmctldPidFile={s}/slurmctld.pid
SlurmdPidFile={s}/slurmd.pid
SlurmctldLogFile={s}/log/slurmctld.log
SlurmdLogFile={s}/log/slurmd.log
NodeName=gridnode NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=gridnode Default=YES MaxTime=INFINITE State=UP
"""


def free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def running_process(name):
    """Is a process of that name alive?  pgrep also finds the zombie of one
    stopped before (PID 1 here does not reap): munged would not be started
    again, and Slurm then waits a minute for it."""
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as handle:
                head, _, tail = handle.read().rpartition(")")
        except OSError:
            continue
        if head.split("(", 1)[-1] == name and tail.split()[0] != "Z":
            return True
    return False


class Slurm:
    def __init__(self):
        need_root()
        for tool in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged"):
            require_tool(tool, "apt-get install slurm-wlm")
        self.dir = tempfile.mkdtemp(prefix="mig-slurm-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        for sub in ("state", "spool", "log"):
            os.makedirs(os.path.join(self.dir, sub))
        subprocess.run(["chown", "-R", "slurm:slurm", self.dir], check=True)
        self.conf = os.path.join(self.dir, "slurm.conf")
        with open(self.conf, "w") as handle:
            handle.write(SLURM_CONF.format(s=self.dir, ctld_port=free_port(), d_port=free_port()))
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.munged = None

    def start(self):
        os.makedirs("/run/munge", exist_ok=True)
        subprocess.run(["chown", "munge:munge", "/run/munge"], check=True)
        if not running_process("munged"):
            subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
            self.munged = int(open("/run/munge/munged.pid").read())
        subprocess.run(["/usr/sbin/slurmctld", "-f", self.conf], check=True, env=self.env)
        subprocess.run(["/usr/sbin/slurmd", "-N", "gridnode", "-f", self.conf], check=True,
                       env=self.env)
        wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env,
                                                  capture_output=True, text=True).stdout,
                 30, what="the Slurm node to be idle")

    def queue(self):
        return subprocess.run(["squeue", "-h", "-o", "%i %j %T"], env=self.env,
                              capture_output=True, text=True).stdout

    def stop(self):
        for name in ("slurmd.pid", "slurmctld.pid"):
            try:
                kill_tree(int(open(os.path.join(self.dir, name)).read()))
            except (OSError, ValueError):
                pass
        # slurmstepd leaves slurmd's tree for each batch job: one that still ran
        # (a failed test) would outlive its cluster.  They, and the jobs, carry
        # this cluster's SLURM_CONF.
        for pid in processes_with_env("SLURM_CONF=%s" % self.conf):
            kill_tree(pid)
        if self.munged:
            kill_tree(self.munged)
        shutil.rmtree(self.dir, ignore_errors=True)


def processes_with_env(entry):
    found = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/environ" % pid, "rb") as handle:
                if entry.encode() in handle.read().split(b"\0"):
                    found.append(int(pid))
        except (OSError, ValueError):
            continue
    return found


@pytest.fixture
def slurm_grid(appliance_factory, tmp_path):
    """A running grid whose only resource is the Slurm cluster, reached over sshd."""
    slurm = Slurm()
    sshd = Sshd(extra_config="SetEnv SLURM_CONF=%s\n" % slurm.conf)
    app = appliance_factory()
    try:
        slurm.start()
        alice = app.add_user("alice")
        only_remote_resources(app.state)
        conf = tmp_path / "cluster.conf"
        conf.write_text("::HOSTURL::\n127.0.0.1\n\n::HOSTIDENTIFIER::\nAUTO\n\n::HOSTKEY::\n%s\n\n"
                        "::SSHPORT::\n%d\n\n::MIGUSER::\n%s\n\n::RESOURCEHOME::\n/home/%s/mig\n\n"
                        "::LRMSTYPE::\nslurm\n\n::CPUCOUNT::\n2\n\n::EXECONFIG::\nname=debug\n"
                        "cputime=3600\npartition=debug\nslots=2\n"
                        % (sshd.public_host_key(), sshd.port, USER, USER))
        added = json.loads(app.cli("resource", "add", "--conf", str(conf), "--owner", "alice",
                                   "--json").stdout)
        sshd.authorize(added["grid_public_key"])
        sshd.start()
        app.start()
        yield app, alice, slurm
    finally:
        app.stop()
        sshd.stop()
        slurm.stop()
        time.sleep(0.1)


def batch_job(slurm, name, state="RUNNING"):
    """The Slurm id of the batch job named after a grid job, once in that state."""
    for line in slurm.queue().splitlines():
        batch_id, batch_name, batch_state = line.split()
        if batch_name == name and batch_state == state:
            return batch_id
    return None


def test_grid_jobs_run_through_sbatch_and_cancel_reaches_scancel(slurm_grid, tmp_path):
    app, alice, slurm = slurm_grid
    # CPUTIME goes to Slurm as --time (whole minutes); when Slurm ends the batch
    # job at its limit, the grid says JOB TIMEOUT as for any other resource
    mark = "%d.%d" % (901, uuid.uuid4().int % 100000 + 1)
    overrun = submit(app, alice, "::EXECUTE::\nsleep %s\n\n::CPUTIME::\n5\n\n::RETRIES::\n0\n"
                                 % mark)
    overrun_id = wait_for(lambda: batch_job(slurm, overrun), 60, what="the overrunning job")
    shown = subprocess.run(["scontrol", "-o", "show", "job", overrun_id], env=slurm.env,
                           capture_output=True, text=True).stdout
    assert " TimeLimit=00:01:00 " in shown, shown
    # as the cluster's admin, take the minute off, so that Slurm's own limit
    # check (every 30 s) ends it now rather than a minute later
    subprocess.run(["scontrol", "update", "JobId=%s" % overrun_id, "TimeLimit=-1"],
                   env=slurm.env, check=True)

    local = tmp_path / "in.txt"
    local.write_text("via slurm\n")
    assert app.curl(alice, "-T", str(local), "-X", "CERTPUT", "URL/cert_redirect/in.txt")[0] == "0"
    job = submit(app, alice, "::EXECUTE::\necho job $SLURM_JOB_ID on $SLURMD_NODENAME\n"
                             "rev in.txt > out.txt\n\n::INPUTFILES::\nin.txt\n\n"
                             "::OUTPUTFILES::\nout.txt slurm-out.txt\n")
    wait_for(lambda: state_of(app, alice, job) == "FINISHED", 90, what="the Slurm job")
    stdout = app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout" % (job, job))
    assert re.match(r"^job \d+ on gridnode\n$", stdout), stdout
    assert app.curl(alice, "--fail", "URL/cert_redirect/slurm-out.txt") == "mruls aiv\n"

    marker = "%d.%d" % (900, uuid.uuid4().int % 100000 + 1)
    long_job = submit(app, alice, "::EXECUTE::\nsleep %s\n" % marker)
    batch_id = wait_for(lambda: batch_job(slurm, long_job), 60, what="the batch job to run")
    reply = app.backend(alice, "jobaction", [("job_id", long_job)],
                        raw_prefix="_=certauth;output_format=txt&action=cancel")
    assert exit_code(reply) == 0 and state_of(app, alice, long_job) == "CANCELED"
    wait_for(lambda: batch_id not in slurm.queue(), 30, what="scancel to end the batch job")
    wait_for(lambda: subprocess.run(["pgrep", "-f", "sleep %s" % marker],
                                    capture_output=True).returncode == 1, 30,
             what="the sleep to be gone")

    wait_for(lambda: state_of(app, alice, overrun) == "FAILED", 90, what="Slurm's time limit")
    assert job_info(app, alice, overrun)["message"] == (
        "JOB TIMEOUT: the job ran longer than its CPUTIME of 5 s and was stopped "
        "(gave up after 0 retries)")
    assert not still_running(USER, "sleep %s" % mark)


def test_a_crashed_appliance_cancels_its_batch_jobs_and_runs_them_again(slurm_grid):
    app, alice, slurm = slurm_grid
    mark = "%d.%d" % (902, uuid.uuid4().int % 100000 + 1)
    flag = "/home/%s/ran-%s" % (USER, mark)
    orphans = []
    try:
        job = submit(app, alice, "::EXECUTE::\nif [ -e %s ]; then echo second run; else touch %s; "
                                 "sleep %s; fi\n" % (flag, flag, mark))
        first = wait_for(lambda: batch_job(slurm, job), 60, what="the batch job to run")
        orphans = descendants(app.proc.pid)  # its ssh clients outlive it
        app.kill()
        app.start()
        wait_for(lambda: first not in slurm.queue(), 30, what="the old batch job to be cancelled")
        wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60, what="the second run")
        assert not still_running(USER, "sleep %s" % mark)
        assert not glob.glob("/home/%s/mig/job-%s*" % (USER, job))
        assert_ran_again_once(app, alice, job)
    finally:
        remove_leftovers(orphans, flag)


def test_a_job_waiting_in_the_batch_queue_is_staged_until_slurm_runs_it(slurm_grid):
    """A grid job that Slurm holds behind other work says it waits; its
    CPUTIME counts from when the batch job starts."""
    app, alice, slurm = slurm_grid
    blocker = subprocess.run(["sbatch", "--parsable", "--partition=debug", "--ntasks=2",
                              "--output=/dev/null", "--wrap", "sleep 300"], env=slurm.env,
                             cwd="/tmp", capture_output=True, text=True, check=True).stdout.strip()
    try:
        wait_for(lambda: batch_job(slurm, "wrap"), 30, what="the cluster's own job to run")
        job = submit(app, alice, "::EXECUTE::\necho ran\n\n::CPUTIME::\n600\n")
        wait_for(lambda: batch_job(slurm, job, "PENDING"), 60, what="the grid job in the queue")
        assert wait_for(lambda: monitor_entry(app, alice, job), 10, what="the monitor row") == \
            "%s (staged: waits for a free slot)" % job
        subprocess.run(["scancel", blocker.split(";")[0]], env=slurm.env, check=True)
        wait_for(lambda: state_of(app, alice, job) == "FINISHED", 90, what="the grid job")
    finally:
        subprocess.run(["scancel", blocker.split(";")[0]], env=slurm.env)


def test_a_running_batch_job_counts_its_cputime_from_its_start(slurm_grid):
    app, alice, slurm = slurm_grid
    mark = "%d.%d" % (903, uuid.uuid4().int % 100000 + 1)
    job = submit(app, alice, "::EXECUTE::\nsleep %s\n\n::CPUTIME::\n600\n" % mark)
    wait_for(lambda: batch_job(slurm, job), 60, what="the batch job to run")
    entry = wait_for(lambda: (monitor_entry(app, alice, job) or "").endswith(" s left)")
                     and monitor_entry(app, alice, job), 10, what="the running job's time")
    assert 590 <= int(re.match(r"\S+ \((\d+) s left\)$", entry).group(1)) <= 600, entry
    app.backend(alice, "jobaction", [("job_id", job)],
                raw_prefix="_=certauth;output_format=txt&action=cancel")
    wait_for(lambda: not still_running(USER, "sleep %s" % mark), 30, what="the sleep to end")
