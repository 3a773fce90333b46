"""Remote resources over ssh, against a real sshd on loopback started here."""

import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import IN_CI, exit_code, require_tool, resource_conf, wait_for, write_home_file

USER = "gridu"


def need_root():
    if os.geteuid() != 0:
        message = "these tests create a user and start sshd: run them as root"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


class Sshd:
    """A private sshd for one user, on 127.0.0.1 or alone in a network namespace
    (a separate "host" with its own address), stopped by PID."""

    def __init__(self, user=USER, netns=False, extra_config=""):
        need_root()
        require_tool("/usr/sbin/sshd", "apt-get install openssh-server openssh-client")
        self.user = user
        self.extra_config = extra_config
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", user], check=True)
        subprocess.run(["usermod", "-p", "*", user], check=True)  # unlocked, no password
        self.netns = None
        self.address = "127.0.0.1"
        if netns:
            self._make_namespace()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="mig-sshd-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.host_key = os.path.join(self.dir, "host_ed25519_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key],
                       check=True)
        os.makedirs(os.path.join(self.dir, "authkeys"), mode=0o755)
        import socket
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc = None

    def _make_namespace(self):
        """A namespace with a veth pair: the host side 10.213.N.1, the sshd at .2."""
        require_tool("ip", "apt-get install iproute2")
        taken = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for number in range(60, 250):
            name = "migtest%d" % number
            if name not in taken and subprocess.run(
                    ["ip", "link", "show", "mt%dh" % number], capture_output=True).returncode:
                break
        host_if, ns_if = "mt%dh" % number, "mt%dn" % number
        for command in (["ip", "netns", "add", name],
                        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
                        ["ip", "link", "set", ns_if, "netns", name],
                        ["ip", "addr", "add", "10.213.%d.1/24" % number, "dev", host_if],
                        ["ip", "link", "set", host_if, "up"],
                        ["ip", "netns", "exec", name, "ip", "addr", "add",
                         "10.213.%d.2/24" % number, "dev", ns_if],
                        ["ip", "netns", "exec", name, "ip", "link", "set", ns_if, "up"],
                        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]):
            subprocess.run(command, check=True, capture_output=True)
        self.netns, self.host_if = name, host_if
        self.address = "10.213.%d.2" % number

    def remove_namespace(self):
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
            self.netns = None

    def public_host_key(self):
        return " ".join(open(self.host_key + ".pub").read().split()[:2])

    def authorize(self, public_key_file):
        path = os.path.join(self.dir, "authkeys", self.user)
        shutil.copyfile(public_key_file, path)
        os.chmod(path, 0o644)

    def start(self):
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as handle:
            handle.write("Port %d\nListenAddress %s\nHostKey %s\nPidFile %s/sshd.pid\n"
                         "AuthorizedKeysFile %s/authkeys/%%u\nPubkeyAuthentication yes\n"
                         "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                         "PermitRootLogin no\nUsePAM no\nAllowUsers %s\nMaxStartups 100:30:200\n"
                         "MaxSessions 50\nStrictModes no\n"  # its files live under /tmp
                         % (self.port, self.address, self.host_key, self.dir, self.dir,
                            self.user) + self.extra_config)
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(prefix + ["/usr/sbin/sshd", "-D", "-e", "-f", config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket

        def listening():
            with socket.socket() as probe:
                probe.settimeout(1)
                return probe.connect_ex((self.address, self.port)) == 0
        wait_for(listening, 10, what="sshd to listen")

    def stop(self):
        if self.proc is not None:
            kill_tree(self.proc.pid)
            self.proc.wait()
        self.remove_namespace()
        subprocess.run(["pkill", "-KILL", "-u", self.user], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def only_remote_resources(state):
    """Switch the embedded local resource off, so that jobs go to the remote ones."""
    ini = os.path.join(state, "config.ini")
    with open(ini) as handle:
        text = handle.read()
    assert "local_resource = True" in text
    with open(ini, "w") as handle:
        handle.write(text.replace("local_resource = True", "local_resource = False"))


def sshd_resource_conf(sshd, host_key, home=None):
    """The configuration of a resource behind one of the tests' sshd hosts."""
    return resource_conf(sshd.address, ["name=exe", "cputime=3600", "slots=2"], port=sshd.port,
                         key=host_key, user=sshd.user, home=home,
                         after=[("CPUCOUNT", "2"), ("MEMORY", "2048")])


@pytest.fixture
def ssh_grid(appliance_factory, tmp_path):
    sshd = Sshd()
    app = appliance_factory()
    try:
        alice = app.add_user("alice")
        only_remote_resources(app.state)
        conf = tmp_path / "res.conf"
        conf.write_text(sshd_resource_conf(sshd, sshd.public_host_key()))
        added = json.loads(app.cli("resource", "add", "--conf", str(conf), "--owner", "alice",
                                   "--json").stdout)
        wrong = tmp_path / "wrong_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
        wrong_key = " ".join(open(str(wrong) + ".pub").read().split()[:2])
        conf.write_text(sshd_resource_conf(sshd, wrong_key))
        impostor = json.loads(app.cli("resource", "add", "--conf", str(conf), "--owner", "alice",
                                      "--json").stdout)
        sshd.authorize(added["grid_public_key"])
        sshd.start()
        app.start()
        yield app, alice, added["name"], impostor["name"]
    finally:
        app.stop()
        sshd.stop()
        subprocess.run(["pkill", "-KILL", "-u", USER], capture_output=True)


def state_of(app, user, job_id):
    reply = app.backend(user, "jobstatus", [("job_id", job_id)])
    match = re.search(r"^Status: (\w+)$", reply, re.M)
    return match.group(1) if match else None


def submit(app, user, text):
    reply = app.backend(user, "textarea", [("mrsltextarea_0", text)])
    assert exit_code(reply) == 0, reply
    return re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)


def test_jobs_run_over_ssh_with_inputs_outputs_cancel_and_pinned_keys(ssh_grid, tmp_path):
    app, alice, good, impostor = ssh_grid
    local = tmp_path / "in.txt"
    local.write_text("over ssh\n")
    assert app.curl(alice, "-T", str(local), "-X", "CERTPUT", "URL/cert_redirect/in.txt")[0] == "0"
    job = submit(app, alice, "::EXECUTE::\nwhoami\ncat in.txt | tr a-z A-Z > out.txt\n\n"
                             "::INPUTFILES::\nin.txt\n\n::OUTPUTFILES::\nout.txt results/out.txt\n\n"
                             "::RESOURCE::\n%s_*\n" % good)
    wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60, what="the ssh job")
    assert app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout" % (job, job)) \
        == "%s\n" % USER
    assert app.curl(alice, "--fail", "URL/cert_redirect/results/out.txt") == "OVER SSH\n"
    assert "Resource: %s_exe" % good in app.backend(alice, "jobstatus", [("job_id", job)])
    assert not glob.glob("/home/%s/mig/job-%s*" % (USER, job))  # cleaned up there
    monitor = json.loads(app.curl(alice, "URL/api/monitor"))
    rows = [o for o in monitor if o.get("kind") == "monitor"][0]["rows"]
    seen = [r for r in rows if r[0] == good][0]
    assert seen[2] == "online" and seen[3] != "-" and seen[4] != "-"

    marker = "%d.%d" % (700, uuid.uuid4().int % 100000 + 1)
    long_job = submit(app, alice, "::EXECUTE::\nsleep %s\n\n::RESOURCE::\n%s_*\n" % (marker, good))
    wait_for(lambda: subprocess.run(["pgrep", "-u", USER, "-f", "sleep %s" % marker],
                                    capture_output=True).returncode == 0, 30, what="remote sleep")
    # it runs there now (the remote side said so): the Monitor counts its time
    assert re.fullmatch(r"%s \(\d+ s left\)" % long_job, wait_for(
        lambda: (monitor_entry(app, alice, long_job) or "").endswith("left)")
        and monitor_entry(app, alice, long_job), 10, what="the running job's time"))
    reply = app.backend(alice, "jobaction", [("job_id", long_job)],
                        raw_prefix="_=certauth;output_format=txt&action=cancel")
    assert exit_code(reply) == 0 and state_of(app, alice, long_job) == "CANCELED"
    wait_for(lambda: subprocess.run(["pgrep", "-u", USER, "-f", "sleep %s" % marker],
                                    capture_output=True).returncode == 1, 15,
             what="the remote process to be gone")

    status = app.cli("resource", "status", good)
    assert status.returncode == 0 and "reachable" in status.stdout
    # A leftover job folder whose job still runs (as after a crash): clean stops it too.
    leftover = "/home/%s/mig/job-left-over" % USER
    os.makedirs(leftover, exist_ok=True)
    entry = pwd.getpwnam(USER)
    os.chown(leftover, entry.pw_uid, entry.pw_gid)
    stray = subprocess.Popen(["setpriv", "--reuid=%d" % entry.pw_uid, "--regid=%d" % entry.pw_gid,
                              "--clear-groups", "sleep", "%s1" % marker], start_new_session=True)
    try:
        with open(os.path.join(leftover, ".pgid"), "w") as handle:
            handle.write("%d\n" % stray.pid)
        assert "removed" in app.cli("resource", "clean", good).stdout
        assert stray.wait(timeout=15) == -9  # killed with its process group
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()
    assert not os.path.exists(leftover)
    wrong = app.cli("resource", "status", impostor, check=False)
    assert wrong.returncode == 1 and "Host key verification failed" in wrong.stderr
    refused = submit(app, alice, "::EXECUTE::\ntrue\n\n::RETRIES::\n0\n\n"
                                 "::RESOURCE::\n%s_*\n" % impostor)
    wait_for(lambda: state_of(app, alice, refused) == "FAILED", 60, what="the refusal")
    status = app.backend(alice, "jobstatus", [("job_id", refused)])
    assert "host key" in status, status


def monitor_entry(app, user, job_id):
    """What the Monitor says of one job on its exe unit ('JOB (...)')."""
    reply = json.loads(app.backend(user, "monitor", [],
                                   raw_prefix="_=certauth;output_format=json"))
    for obj in reply:
        for row in obj.get("rows", []) if obj.get("object_type") == "table" else []:
            for cell in row:
                for part in str(cell).split(", "):
                    if part.startswith(job_id + " ("):
                        return part
    return None


def kill_tree(pid):
    """SIGKILL a process and everything below it: a host dying mid-job."""
    for victim in [pid] + descendants(pid):
        try:
            os.kill(victim, 9)
        except ProcessLookupError:
            pass


def test_a_host_dying_mid_job_sends_the_job_elsewhere_then_fails_it(appliance_factory, tmp_path):
    hosts = [Sshd("gridns1", netns=True), Sshd("gridns2", netns=True)]
    app = appliance_factory()
    try:
        alice = app.add_user("alice")
        only_remote_resources(app.state)
        names = []
        for host in hosts:
            conf = tmp_path / ("res-%d.conf" % host.port)
            conf.write_text(sshd_resource_conf(host, host.public_host_key()))
            added = json.loads(app.cli("resource", "add", "--conf", str(conf), "--owner",
                                       "alice", "--json").stdout)
            names.append(added["name"])
            host.authorize(added["grid_public_key"])
            host.start()
        app.start()
        job = submit(app, alice, "::EXECUTE::\nsleep 4\necho survived\n\n::RETRIES::\n1\n")
        wait_for(lambda: state_of(app, alice, job) == "EXECUTING", 30, what="the first run")
        first = re.search(r"^Resource: (\S+)_exe$", app.backend(alice, "jobstatus",
                                                                [("job_id", job)]), re.M).group(1)
        victim = hosts[names.index(first)]
        wait_for(lambda: (monitor_entry(app, alice, job) or "").endswith(" s left)"), 15,
                 what="the job to run there (the remote side says it started)")
        kill_tree(victim.proc.pid)  # the host dies while the job runs ...
        victim.remove_namespace()  # ... and its network with it
        wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60, what="the retry elsewhere")
        status = app.backend(alice, "jobstatus", [("job_id", job)])
        other = [n for n in names if n != first][0]
        assert "Resource: %s_exe" % other in status, status
        assert first.startswith("10.213.") and other.startswith("10.213.")
        assert app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout"
                        % (job, job)) == "survived\n"
        # the dead host is tried again after its back-off, and the job fails there
        refused = submit(app, alice, "::EXECUTE::\ntrue\n\n::RETRIES::\n0\n\n"
                                     "::RESOURCE::\n%s_*\n" % first)
        wait_for(lambda: state_of(app, alice, refused) == "FAILED", 60, what="the final failure")
        reason = app.backend(alice, "jobstatus", [("job_id", refused)])
        assert "RESOURCE DIED" in reason and "gave up after 0 retries" in reason, reason
    finally:
        app.stop()
        for host in hosts:
            host.stop()


def job_info(app, user, job_id):
    """The job's status as the JSON backend gives it, with its execution history."""
    reply = app.backend(user, "jobstatus", [("job_id", job_id), ("flags", "v")],
                        raw_prefix="_=certauth;output_format=json")
    return [o for o in json.loads(reply) if o.get("object_type") == "job_list"][0]["jobs"][0]


def assert_ran_again_once(app, user, job):
    """After a crash and a restart: the job's second run, and only it, finished."""
    assert app.curl(user, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout"
                    % (job, job)) == "second run\n"
    info = job_info(app, user, job)
    assert [h[0] for h in info["history"]].count("FINISHED") == 1, info["history"]
    assert [r["message"] for r in info["execution_histories"]] == [
        "RESOURCE DIED: the appliance restarted while the job ran"]


def remove_leftovers(pids, flag):
    """Kill processes a crash test left (by PID) and its marker file."""
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    if os.path.exists(flag):
        os.remove(flag)


def still_running(user, *patterns):
    """Processes of user that still run (zombies left to a PID 1 that does not
    reap are dead), except the sshd sessions; only those matching a pattern
    when patterns are given."""
    listing = subprocess.run(["ps", "-u", user, "-o", "stat=,args="], capture_output=True,
                             text=True).stdout
    alive = [line.split(None, 1)[1] for line in listing.splitlines()
             if line.strip() and not line.split()[0].startswith("Z")]
    return [a for a in alive if not a.startswith("sshd:")
            and (not patterns or any(p in a for p in patterns))]


def add_resource(app, tmp_path, sshd, home=None):
    """Register sshd's host as alice's resource and authorize the grid's key there."""
    conf = tmp_path / ("res-%d.conf" % sshd.port)
    conf.write_text(sshd_resource_conf(sshd, sshd.public_host_key(), home))
    added = json.loads(app.cli("resource", "add", "--conf", str(conf), "--owner", "alice",
                               "--json").stdout)
    sshd.authorize(added["grid_public_key"])
    return added["name"]


def monitor_row(app, user, name):
    monitor = json.loads(app.curl(user, "URL/api/monitor"))
    rows = [o for o in monitor if o.get("kind") == "monitor"][0]["rows"]
    return [r for r in rows if r[0] == name][0]


def test_cputime_is_enforced_on_the_resource_and_nothing_is_left_running(ssh_grid):
    app, alice, good, _impostor = ssh_grid
    mark = "%d" % (uuid.uuid4().int % 100000 + 1)
    overrun = submit(app, alice, "::EXECUTE::\nsleep 701.%s &\nsleep 702.%s\n\n::CPUTIME::\n2\n\n"
                                 "::RETRIES::\n1\n\n::RESOURCE::\n%s_*\n" % (mark, mark, good))
    # a job that ends well but leaves a process behind: that one goes too
    leaver = submit(app, alice, "::EXECUTE::\nsleep 703.%s &\necho bye\n\n::RESOURCE::\n%s_*\n"
                                % (mark, good))
    wait_for(lambda: state_of(app, alice, overrun) == "FAILED", 40, what="the CPUTIME failure")
    wait_for(lambda: state_of(app, alice, leaver) == "FINISHED", 20, what="the other job")
    info = job_info(app, alice, overrun)
    assert info["message"] == ("JOB TIMEOUT: the job ran longer than its CPUTIME of 2 s and was "
                               "stopped (gave up after 1 retries)"), info
    runs = info["execution_histories"]
    assert [r["message"][:12] for r in runs] == ["JOB TIMEOUT:"] * 2, runs
    # stopped by the resource at CPUTIME, not by the grid's later fallback
    assert all(r["failed"] - r["executing"] < 15 for r in runs), runs
    assert app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout"
                    % (leaver, leaver)) == "bye\n"
    wait_for(lambda: not still_running(USER), 10,
             what="nothing of the jobs left on the resource: %s" % still_running(USER))
    # the job's fault, not the resource's: it stays online
    assert monitor_row(app, alice, good)[2] == "online"


def test_a_full_disk_takes_the_resource_out_and_the_jobs_finish_elsewhere(appliance_factory,
                                                                        tmp_path):
    small, other = Sshd(), Sshd()
    app = appliance_factory()
    disk = os.path.join(small.dir, "small-disk")
    os.makedirs(disk)
    mounted = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", disk],
                       check=True)
        mounted = True
        os.chown(disk, *[int(subprocess.run(["id", flag, USER], capture_output=True, text=True,
                                            check=True).stdout) for flag in ("-u", "-g")])
        alice = app.add_user("alice")
        only_remote_resources(app.state)
        full = add_resource(app, tmp_path, small, home=disk + "/mig")  # scheduled first
        roomy = add_resource(app, tmp_path, other)
        assert full < roomy
        for host in (small, other):
            host.start()
        write_home_file(alice, "big.bin", b"x" * 2000000)
        app.start()
        staged = submit(app, alice, "::EXECUTE::\nwc -c < big.bin\n\n::INPUTFILES::\nbig.bin\n\n"
                                    "::RETRIES::\n1\n")
        # The writer waits until the staged job has failed and freed its part of
        # the disk: filling it then is certain (not so while the other is there).
        writer = submit(app, alice, "::EXECUTE::\nsleep 2\nhead -c 2000000 /dev/zero > fill.bin\n"
                                    "wc -c < fill.bin\n\n::RETRIES::\n1\n")
        seen = []  # what the monitor said, for the message if this times out

        def taken_out():
            seen.append(monitor_row(app, alice, full)[2])
            return seen[-1].startswith("offline: disk full on resource %s: " % full)
        try:
            wait_for(taken_out, 30, what="the full resource to be taken out")
        except AssertionError:
            raise AssertionError("the full resource was never taken out for a full disk; the "
                                 "monitor said %s; the jobs: %s" % (
                                     sorted(set(seen)), [job_info(app, alice, j)
                                                         for j in (staged, writer)])) from None
        for job in (staged, writer):
            wait_for(lambda: state_of(app, alice, job) == "FINISHED", 30, what="the job elsewhere")
            assert app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout"
                            % (job, job)) == "2000000\n"
            info = job_info(app, alice, job)
            assert info["resource"] == "%s_exe" % roomy
            runs = info["execution_histories"]
            assert len(runs) == 1 and runs[0]["resource"] == "%s_exe" % full, runs
            assert runs[0]["message"].startswith("disk full on resource %s: " % full), runs
            # the disk filled while the inputs were unpacked, or while the job wrote
            assert ("No space left on device" in runs[0]["message"]
                    or "the inputs did not fit (tar: " in runs[0]["message"]), runs
            assert [h[0] for h in info["history"]].count("FINISHED") == 1, info["history"]
        assert os.listdir(disk + "/mig") == []  # nothing left on the full disk
    finally:
        app.stop()
        for host in (small, other):
            host.stop()  # before the unmount: nothing of the user may hold the disk
        if mounted:
            subprocess.run(["umount", disk], check=True)


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open("/proc/%s/stat" % entry).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        found.append(todo.pop())
        todo.extend(children.get(found[-1], []))
    return found


def test_a_crashed_appliance_cleans_the_resource_and_runs_the_job_again(ssh_grid):
    app, alice, good, _impostor = ssh_grid
    mark = "%d.%d" % (704, uuid.uuid4().int % 100000 + 1)
    flag = "/home/%s/ran-%s" % (USER, mark)
    orphans = []
    try:
        job = submit(app, alice, "::EXECUTE::\ntest -e first-run-was-here && echo stale\n"
                                 "if [ -e %s ]; then echo second run; else touch %s "
                                 "first-run-was-here; sleep %s; fi\n\n::RESOURCE::\n%s_*\n"
                                 % (flag, flag, mark, good))
        wait_for(lambda: still_running(USER, "sleep %s" % mark), 30, what="the remote job")
        folder, = glob.glob("/home/%s/mig/job-%s.*" % (USER, job))  # the run's own folder
        assert os.path.exists(os.path.join(folder, "first-run-was-here"))
        orphans = descendants(app.proc.pid)  # its ssh clients outlive it
        app.kill()
        app.start()
        wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60, what="the second run")
        assert not still_running(USER, "sleep %s" % mark)
        assert not glob.glob("/home/%s/mig/job-%s*" % (USER, job))
        assert_ran_again_once(app, alice, job)
    finally:
        remove_leftovers(orphans, flag)
