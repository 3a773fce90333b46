"""Remote resources keep jobs apart (issue 10): each run of a job gets a
fresh private folder under RESOURCEHOME, every process it started is gone
when it ends (also those that left its session), each resource has its own
ssh ControlMaster, and configuration values cannot become ssh options.

The sshd tests run against real sshd on loopback (tests/test_ssh_resources.py)."""

import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import uuid

import pytest

from conftest import ENTRY, resource_conf, wait_for
from mig.core.resconf import parse_resource
from mig.errors import MrslError
from mig.execute.sshremote import STARTED, Remote, control_path, ensure_grid_key
from test_slurm_resources import slurm_grid  # noqa: F401 (a fixture)
from test_ssh_resources import (USER, Sshd, only_remote_resources, ssh_grid,  # noqa: F401
                                sshd_resource_conf, state_of, still_running, submit)

SUN_PATH_MAX = 107  # bytes of a unix socket path on Linux
SSH_SUFFIX = 17  # ssh binds ControlPath + "." + 16 random characters first


# -- the ControlMaster socket ----------------------------------------------------
def test_resources_with_a_long_common_name_prefix_get_their_own_control_path(tmp_path):
    prefix = "a" * 60 + "." + "b" * 39  # 100 characters
    assert len(prefix) == 100
    paths = set()
    for host, port, user in ((prefix + "1.example.org", 22, "gridu"),
                             (prefix + "2.example.org", 22, "gridu"),
                             (prefix + "1.example.org", 2222, "gridu"),
                             (prefix + "1.example.org", 22, "gridv")):
        conf = parse_resource(resource_conf(host, ["name=exe"], port=port, user=user))
        for identifier in (0, 1):
            remote = Remote("%s.%d" % (host, identifier), conf, str(tmp_path))
            assert len(remote.control) + SSH_SUFFIX <= SUN_PATH_MAX, remote.control
            paths.add(remote.control)
    assert len(paths) == 8


def test_a_long_ssh_folder_moves_the_sockets_to_a_short_private_folder(tmp_path):
    ssh_dir = tmp_path / ("x" * 120) / "ssh"
    ssh_dir.mkdir(parents=True)
    conf = parse_resource(resource_conf("node.example.org", ["name=exe"]))
    first = Remote("node.example.org.0", conf, str(ssh_dir))
    second = Remote("node.example.org.1", conf, str(ssh_dir))
    assert first.control != second.control
    for remote in (first, second):
        assert len(remote.control) + SSH_SUFFIX <= SUN_PATH_MAX, remote.control
    folder = os.path.dirname(first.control)
    info = os.lstat(folder)
    assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700
    os.chmod(folder, 0o755)  # no longer private: no master rather than a shared one
    try:
        assert Remote("node.example.org.0", conf, str(ssh_dir)).control == "none"
    finally:
        os.rmdir(folder)


def connection_port(output):
    """The sshd port in $SSH_CONNECTION ("client port server port")."""
    return int(output.split()[-1])


def test_jobs_of_resources_on_one_host_reach_their_own_sshd(appliance_factory, tmp_path):
    """Two sshd on 127.0.0.1, two resources 127.0.0.1.0 and .1, and a state
    folder so long that cutting the socket path at 90 characters made both
    use one ControlMaster: each job must still run behind its own sshd."""
    hosts = [Sshd(), Sshd()]
    pad = max(1, 95 - len(str(tmp_path)))
    app = appliance_factory(state=str(tmp_path / ("s" * pad)))
    try:
        alice = app.add_user("alice")
        only_remote_resources(app.state)
        names = []
        for index, host in enumerate(hosts):
            conf = tmp_path / ("res-%d.conf" % index)
            conf.write_text(sshd_resource_conf(host, host.public_host_key(),
                                               home="/home/%s/mig-%d" % (USER, index)))
            added = json.loads(app.cli("resource", "add", "--conf", str(conf), "--owner",
                                       "alice", "--json").stdout)
            names.append(added["name"])
            host.authorize(added["grid_public_key"])
            host.start()
        assert names == ["127.0.0.1.0", "127.0.0.1.1"]
        app.start()
        for _round in range(2):
            for name, host in zip(names, hosts):
                job = submit(app, alice, "::EXECUTE::\necho $SSH_CONNECTION\n\n"
                                         "::RESOURCE::\n%s_*\n" % name)
                wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60,
                         what="the job on %s" % name)
                out = app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout"
                               % (job, job))
                assert connection_port(out) == host.port, (name, out, host.port)
    finally:
        app.stop()
        for host in hosts:
            host.stop()
        sockets = os.path.dirname(control_path(os.path.join(app.state, "ssh"), "x", "x", 22, "x"))
        if os.path.basename(sockets).startswith("mig-cm-"):  # the short folder in /tmp
            shutil.rmtree(sockets, ignore_errors=True)


# -- one job's folder and processes ------------------------------------------------
def run_escaping_job(app, alice, first, extra="", timeout=60):
    """A job that starts sleeps 'first.MARK' and 'first+1.MARK' that leave its
    session and tree: it ran in a private folder (mode 700) under RESOURCEHOME,
    and once FINISHED neither sleep nor the folder is left.  Returns the folder."""
    mark = "%d" % (uuid.uuid4().int % 100000 + 1)
    job = submit(app, alice, "::EXECUTE::\npwd\nstat -c %%a .\nsetsid sleep %d.%s &\n"
                             "( (sleep %d.%s &) & )\nsleep 1\necho started\n%s"
                             % (first, mark, first + 1, mark, extra))
    wait_for(lambda: state_of(app, alice, job) == "FINISHED", timeout, what="the job")
    out = app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout" % (job, job))
    folder, mode, started = out.splitlines()
    assert re.fullmatch(r"/home/%s/mig/job-%s\.[0-9a-f]{16}" % (USER, re.escape(job)),
                        folder), folder
    assert mode == "700" and started == "started"
    # ended before the grid saw the job finish: no waiting here
    assert not still_running(USER, "sleep %d.%s" % (first, mark),
                             "sleep %d.%s" % (first + 1, mark))
    assert not glob.glob("/home/%s/mig/job-%s*" % (USER, job))
    return folder


def test_a_job_runs_in_a_private_folder_and_leaves_no_process_behind(ssh_grid):
    app, alice, good, _impostor = ssh_grid
    folder = run_escaping_job(app, alice, 301, "\n::RESOURCE::\n%s_*\n" % good)
    assert not os.path.exists(folder)


def test_a_cancel_ends_the_processes_that_left_the_job_session(ssh_grid):
    app, alice, good, _impostor = ssh_grid
    mark = "%d" % (uuid.uuid4().int % 100000 + 1)
    job = submit(app, alice, "::EXECUTE::\nsetsid sleep 303.%s &\n( (sleep 304.%s &) & )\n"
                             "sleep 305.%s\n\n::RESOURCE::\n%s_*\n" % (mark, mark, mark, good))
    patterns = ["sleep %d.%s" % (n, mark) for n in (303, 304, 305)]
    wait_for(lambda: len(still_running(USER, *patterns)) == 3, 30, what="the job's sleeps")
    reply = app.backend(alice, "jobaction", [("job_id", job)],
                        raw_prefix="_=certauth;output_format=txt&action=cancel")
    assert state_of(app, alice, job) == "CANCELED", reply
    wait_for(lambda: not still_running(USER, *patterns), 15,
             what="every process of the job to be gone: %s" % still_running(USER, *patterns))
    wait_for(lambda: not glob.glob("/home/%s/mig/job-%s*" % (USER, job)), 15,
             what="the job folder to be removed")


def test_a_resourcehome_others_may_write_to_is_refused(tmp_path):
    sshd = Sshd()
    open_home = "/tmp/mig-open-%s" % uuid.uuid4().hex[:8]
    os.makedirs(open_home)
    os.chmod(open_home, 0o777)  # root's, and anyone may write: a folder could be swapped
    remote = None
    try:
        ssh_dir = str(tmp_path / "ssh")
        sshd.authorize(ensure_grid_key(ssh_dir))
        sshd.start()
        conf = parse_resource(sshd_resource_conf(sshd, sshd.public_host_key(), home=open_home))
        remote = Remote("127.0.0.1.0", conf, ssh_dir)
        job_id = "1_1_1_2026__0_0_0_x.0"

        def run_job():
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                script = b"pwd > where.txt\n"
                entry = tarfile.TarInfo(job_id + ".job")
                entry.size = len(script)
                archive.addfile(entry, io.BytesIO(script))
            return subprocess.run(
                remote.ssh(remote.job_command(job_id, "exe", {"CPUTIME": 10, "NODECOUNT": 1},
                                              "0" * 16)),
                input=buffer.getvalue(), capture_output=True, timeout=60)
        result = run_job()
        assert result.returncode != 0
        assert b"RESOURCEHOME %s must be a folder of %s" % (open_home.encode(), USER.encode()) \
            in result.stderr, result.stderr
        assert os.listdir(open_home) == []
        # the same folder, the account's own and closed to others: accepted, and
        # the whole job's remote side says nothing on stderr but that the job started
        os.chown(open_home, *[int(subprocess.run(["id", flag, USER], capture_output=True,
                                                 text=True, check=True).stdout)
                              for flag in ("-u", "-g")])
        os.chmod(open_home, 0o755)
        result = run_job()
        assert (result.returncode, result.stderr) == (0, STARTED + b"\n")
        with tarfile.open(fileobj=io.BytesIO(result.stdout)) as archive:
            where = archive.extractfile("./where.txt").read().decode().strip()
        assert where == "%s/job-%s.%s" % (open_home, job_id, "0" * 16)
        assert os.listdir(open_home) == []
    finally:
        if remote is not None:
            subprocess.run(["ssh", "-o", "ControlPath=%s" % remote.control, "-O", "exit", "x"],
                           capture_output=True, timeout=10)
        sshd.stop()
        subprocess.run(["rm", "-rf", "--", open_home], check=False)


# -- configuration values that would be options -----------------------------------
BASE = resource_conf("node.example.org", ["name=exe", "execution_dir=/scratch/mig"], port=22)


@pytest.mark.parametrize("change, keyword, why", [
    (("::SSHPORT::\n22", "::SSHPORT::\n0"), "SSHPORT", "is not a port number"),
    (("::SSHPORT::\n22", "::SSHPORT::\n65536"), "SSHPORT", "is not a port number"),
    (("::SSHPORT::\n22", "::SSHPORT::\n99999999999999999999"), "SSHPORT", "is not a port number"),
    (("::SSHPORT::\n22", "::SSHPORT::\n\u00b2"), "SSHPORT", "is not a whole number"),
    (("::SSHPORT::\n22", "::SSHPORT::\n-22"), "SSHPORT", "is not a whole number"),
    (("/home/gridu/mig", "-rf"), "RESOURCEHOME", "may not start with '-'"),
    (("/home/gridu/mig", "--help"), "RESOURCEHOME", "may not start with '-'"),
    (("::HOSTURL::\nnode.example.org", "::HOSTURL::\n-v"), "HOSTURL", "may not start with '-'"),
    (("::HOSTURL::\nnode.example.org", "::HOSTURL::\n-oProxyJump"), "HOSTURL",
     "may not start with '-'"),
    (("::MIGUSER::", "::FRONTENDNODE::\n-4\n\n::MIGUSER::"), "FRONTENDNODE",
     "may not start with '-'"),
    (("execution_dir=/scratch/mig", "execution_dir=-x"), "EXECONFIG", "may not start with '-'"),
    (("execution_dir=/scratch/mig", "execution_node=-x"), "EXECONFIG", "may not start with '-'"),
])
def test_values_that_ssh_would_take_for_options_are_refused(change, keyword, why):
    text = BASE.replace(*change, 1)
    assert text != BASE
    with pytest.raises(MrslError) as err:
        parse_resource(text)
    assert err.value.keyword == keyword and why in str(err.value), str(err.value)


def test_good_ports_and_paths_still_pass():
    for port in ("1", "22", "65535"):
        assert parse_resource(BASE.replace("::SSHPORT::\n22", "::SSHPORT::\n" + port))[
            "SSHPORT"] == int(port)
    conf = parse_resource(BASE.replace("/home/gridu/mig", "mig-work/a-b"))
    assert conf["RESOURCEHOME"] == "mig-work/a-b"


def test_resource_add_refuses_them_and_stores_nothing(tmp_path):
    state = str(tmp_path / "s")

    def run(*args):
        return subprocess.run([sys.executable, ENTRY] + list(args) + ["--state", state],
                              capture_output=True, text=True, timeout=60)
    assert run("user", "add", "owner1").returncode == 0
    conf = tmp_path / "res.conf"
    for change, keyword in ((("::SSHPORT::\n22", "::SSHPORT::\n70000"), "SSHPORT"),
                            (("/home/gridu/mig", "-rf"), "RESOURCEHOME")):
        conf.write_text(BASE.replace(*change, 1))
        bad = run("resource", "add", "--conf", str(conf), "--owner", "owner1")
        assert bad.returncode == 3 and keyword in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    assert json.loads(run("resource", "list", "--json").stdout) == []


def test_a_slurm_job_leaves_no_process_behind_either(slurm_grid):
    """Through sbatch on a real single-node Slurm (tests/test_slurm_resources.py):
    Slurm's proctrack/linuxproc loses what left the batch job's tree; the
    grid's sweep on the front end finds it by its MIGJOB marker."""
    app, alice, _slurm = slurm_grid
    run_escaping_job(app, alice, 306, timeout=90)
