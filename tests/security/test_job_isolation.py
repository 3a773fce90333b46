"""Hostile jobs on the local resource, through a real appliance run as root.

Each test runs jobs that try one attack and record what happened as marker
lines in their stdout; the test checks the markers and, where it can, the
victim itself (its files, its processes, a listener it should not reach).
"""

import http.server
import os
import re
import socket
import threading
import time

import pytest

from conftest import IN_CI, exit_code, set_config, wait_for, write_home_file

pytestmark = pytest.mark.usefixtures("as_root")


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("the job isolation tests need root (CI runs as root)")
        pytest.skip("job isolation needs root: run the tests as root (e.g. sudo make test)")


@pytest.fixture
def grid(appliance_factory):
    """A running appliance with alice and bob, after config changes if given."""
    def start(**config):
        app = appliance_factory()
        app.cli("user", "list")
        if config:
            set_config(app.state, **config)
        users = {name: app.add_user(name) for name in ("alice", "bob")}
        app.start()
        return app, users
    return start


def submit(app, user, text):
    text = text.replace("\n::", "\n\n::")  # keywords apart, as mRSL wants
    reply = app.backend(user, "textarea", [("mrsltextarea_0", text)])
    assert exit_code(reply) == 0, reply
    return re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)


def status(app, user, job_id):
    return app.backend(user, "jobstatus", [("job_id", job_id), ("flags", "v")])


def state(app, user, job_id):
    match = re.search(r"^Status: (\w+)$", status(app, user, job_id), re.M)
    return match.group(1) if match else None


def wait_state(app, user, job_id, states=("FINISHED", "FAILED", "RETRY"), timeout=60):
    return wait_for(lambda: state(app, user, job_id) in states and state(app, user, job_id),
                    timeout=timeout, what="job %s to end" % job_id)


def output(user, job_id, suffix="stdout"):
    path = os.path.join(user["home"], "job_output", job_id, "%s.%s" % (job_id, suffix))
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def job_processes(marker):
    """pids of processes whose command line holds marker."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def running_job_pid(marker, timeout=30):
    return wait_for(lambda: job_processes(marker), timeout=timeout,
                    what="a job process with %s" % marker)[0]


def test_a_job_cannot_touch_another_users_running_job(grid):
    app, users = grid()
    alice, bob = users["alice"], users["bob"]
    write_home_file(bob, "secret.txt", "bob-secret-4711\n")
    victim = submit(app, bob, "::EXECUTE::\nsleep 6.5\ncat secret.txt > result.txt\n"
                              "echo bob-done\n::INPUTFILES::\nsecret.txt\n"
                              "::OUTPUTFILES::\nresult.txt\n")
    pid = running_job_pid("6.5")
    launcher = int(open("/proc/%d/stat" % pid).read().rpartition(")")[2].split()[1])
    bob_uid = os.stat("/proc/%d" % pid).st_uid
    folders = [os.path.join(root, victim) for root in (app.state + "-work",
                                                      os.path.join(app.state, "work"))]
    attack = ["W=/tmp/.mig-jobs/%s" % victim]
    for target in ["$W"] + folders:
        attack += ["cat %s/secret.txt && echo LEAK-read" % target,
                   "echo forged > %s/result.txt && echo LEAK-write" % target,
                   "ls %s && echo LEAK-list" % target]
    attack += ["cat /proc/%d/environ && echo LEAK-environ" % pid,
               "ls /proc/%d/cwd/ && echo LEAK-cwd" % pid,
               "test -e /proc/%d && echo LEAK-proc-visible" % pid,
               "kill -9 %d && echo LEAK-kill" % pid,
               "kill -9 %d && echo LEAK-kill-launcher" % launcher,
               "kill -9 -1; echo killed-own",
               "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None); "
               "sys.exit(l.ptrace(16, %d, 0, 0))' && echo LEAK-ptrace" % pid,
               "python3 -c 'import ctypes,sys; l=ctypes.CDLL(None); "
               "sys.exit(l.ptrace(16, %d, 0, 0))' && echo LEAK-ptrace-launcher" % launcher,
               "echo attack-done"]
    attacker = submit(app, alice, "::EXECUTE::\n%s\n" % "\n".join(attack))
    assert wait_state(app, alice, attacker) == "FINISHED"
    seen = output(alice, attacker)
    assert "attack-done" in seen and "LEAK" not in seen, seen
    assert "bob-secret" not in seen
    assert wait_state(app, bob, victim) == "FINISHED"
    assert "bob-done" in output(bob, victim)
    with open(os.path.join(bob["home"], "result.txt")) as handle:
        assert handle.read() == "bob-secret-4711\n"  # not forged
    assert not any(os.stat("/proc/%d" % p).st_uid == bob_uid for p in job_processes("6.5"))


def test_nothing_a_job_starts_outlives_it(grid):
    app, users = grid()
    alice = users["alice"]
    job_id = submit(app, alice, "::EXECUTE::\nsetsid sleep 4242 &\n( (sleep 4243 &) & )\n"
                                "nohup sleep 4244 > /dev/null 2>&1 &\n"
                                "python3 -c 'import os,time; os.fork() and os._exit(0); "
                                "os.setsid(); time.sleep(4245)' &\n"
                                "sleep 0.5\necho > /tmp/left-behind\necho > /dev/shm/left-shm\n"
                                "echo started\n")
    assert wait_state(app, alice, job_id) == "FINISHED"
    assert "started" in output(alice, job_id)
    wait_for(lambda: not any(job_processes(m) for m in ("4242", "4243", "4244", "4245")),
             timeout=5, what="the job's escaped processes to be gone")
    # nothing it left in the shared temporary folders is seen by the next job
    probe = submit(app, users["bob"], "::EXECUTE::\nls /tmp /dev/shm\necho probe-done\n")
    assert wait_state(app, users["bob"], probe) == "FINISHED"
    listing = output(users["bob"], probe)
    assert "probe-done" in listing and "left-behind" not in listing and "left-shm" not in listing


def test_a_running_job_is_stopped_with_the_appliance_and_never_runs_twice(grid):
    app, users = grid()
    alice = users["alice"]
    job_id = submit(app, alice, "::EXECUTE::\nsleep 4301\n")
    running_job_pid("4301")
    app.kill()  # kill -9: the launcher sees its input end and stops the job
    wait_for(lambda: not job_processes("4301"), timeout=10,
             what="the job to end with the appliance")
    app.start()
    wait_for(lambda: state(app, alice, job_id) == "EXECUTING", timeout=60,
             what="the job to run again")
    wait_for(lambda: len(job_processes("4301")) == 1, timeout=30, what="the rerun")
    time.sleep(1)
    assert len(job_processes("4301")) == 1  # never twice side by side
    app.backend(alice, "jobaction", [("job_id", job_id), ("action", "cancel")])
    wait_for(lambda: not job_processes("4301"), timeout=10, what="the cancel")


def test_outputs_enter_the_home_as_new_files_of_the_appliance(grid):
    app, users = grid()
    alice = users["alice"]
    job_id = submit(app, alice, "::EXECUTE::\necho data > out.txt\nln out.txt keep.txt\n"
                                "echo mine > own.txt\nln -s /etc/shadow shadow.txt\n"
                                "(sleep 30 >> own.txt &)\necho done\n"
                                "::OUTPUTFILES::\nout.txt\nown.txt\nshadow.txt\n")
    assert wait_state(app, alice, job_id) == "FINISHED"
    home = alice["home"]
    own = os.stat(os.path.join(home, "own.txt"))
    assert own.st_uid == 0 and own.st_nlink == 1
    # a file with a second name could be another's: never collected, nor a link
    assert not os.path.exists(os.path.join(home, "out.txt"))
    assert not os.path.lexists(os.path.join(home, "shadow.txt"))
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            info = os.lstat(os.path.join(root, name))
            assert info.st_uid == 0, "%s is owned by %d" % (name, info.st_uid)
    io_status = output(alice, job_id, "io-status")
    assert "output_files_missing 2" in io_status


def test_root_never_writes_through_a_jobs_hard_link(grid):
    app, users = grid()
    alice = users["alice"]
    write_home_file(alice, "new.txt", "from-home\n")
    job_id = submit(app, alice, "::EXECUTE::\necho original > orig.txt\nln orig.txt new.txt\n"
                                "sleep 5.17\ncat orig.txt new.txt\n")
    running_job_pid("5.17")
    reply = app.backend(alice, "liveio", [("action", "get"), ("job_id", job_id),
                                          ("src", "new.txt"), ("dst", ".")])
    assert exit_code(reply) == 0, reply
    assert wait_state(app, alice, job_id) == "FINISHED"
    assert output(alice, job_id) == "original\nfrom-home\n"


def test_the_state_folder_and_the_host_are_out_of_reach(grid):
    app, users = grid()
    state = app.state
    marker = os.path.join(state, "job-was-here")
    lines = ["ls %s && echo LEAK-list-state" % state,
             "cat %s/secret.key && echo LEAK-secret" % state,
             "cat %s/ca/ca.key && echo LEAK-ca" % state,
             "touch %s && echo LEAK-write-state" % marker,
             "touch /etc/job-was-here && echo LEAK-write-etc",
             "touch /var/lib/job-was-here && echo LEAK-write-var",
             "id -u; id -G", "echo probe-done"]
    job_id = submit(app, users["alice"], "::EXECUTE::\n%s\n" % "\n".join(lines))
    assert wait_state(app, users["alice"], job_id) == "FINISHED"
    seen = output(users["alice"], job_id)
    assert "probe-done" in seen and "LEAK" not in seen, seen
    uid, groups = seen.splitlines()[:2]
    assert int(uid) >= 0x40000000 and groups == uid
    assert not os.path.exists(marker) and not os.path.exists("/etc/job-was-here")


def test_limits_on_processes_and_disk_are_enforced(grid):
    app, users = grid(local_max_processes="20", local_default_disk_mb="5")
    alice = users["alice"]
    forker = ("import os, time\\nn = 0\\nfor i in range(60):\\n    try:\\n"
              "        pid = os.fork()\\n    except OSError:\\n        break\\n"
              "    if pid == 0:\\n        time.sleep(30)\\n        os._exit(0)\\n"
              "    n += 1\\nprint('running', n)\\n")
    forks = submit(app, alice, "::EXECUTE::\nprintf \"%s\" > forks.py\npython3 forks.py\n"
                   % forker)
    assert wait_state(app, alice, forks) == "FINISHED"
    running = int(re.search(r"running (\d+)", output(alice, forks)).group(1))
    assert running < 20
    disk = submit(app, alice, "::EXECUTE::\nhead -c 3000000 /dev/zero > a\n"
                              "head -c 3000000 /dev/zero > b\nsleep 5\necho survived\n"
                              "::RETRIES::\n0\n")
    assert wait_state(app, alice, disk) == "FAILED"
    assert "DISK: the job's folder grew beyond its limit of 5 MB" in status(app, alice, disk)


def test_memory_is_limited_by_the_jobs_memory(grid):
    app, users = grid()
    alice = users["alice"]
    job_id = submit(app, alice, "::EXECUTE::\npython3 -c 'x = bytearray(300 * 2**20); "
                                "print(\"allocated\")'\n::MEMORY::\n64\n")
    assert wait_state(app, alice, job_id) == "FINISHED"
    assert "allocated" not in output(alice, job_id)


def test_jobs_have_no_network_unless_the_resource_allows_it(grid):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.settimeout(0.2)
    try:
        app, users = grid()
        alice = users["alice"]
        job_id = submit(app, alice, "::EXECUTE::\n(echo hi > /dev/tcp/127.0.0.1/%d) && "
                                    "echo LEAK-connected\necho probe-done\n" % port)
        assert wait_state(app, alice, job_id) == "FINISHED"
        assert "LEAK" not in output(alice, job_id) and "probe-done" in output(alice, job_id)
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


class Secret(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_GET(self):
        Secret.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"loopback-only-secret")

    def log_message(self, *args):
        pass


def test_input_urls_cannot_reach_loopback_services(grid):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Secret.hits.clear()
    try:
        app, users = grid()
        alice = users["alice"]
        port = server.server_address[1]
        job_id = submit(app, alice, "::EXECUTE::\ncat secret.txt\necho probe-done\n"
                                    "::INPUTFILES::\nhttp://127.0.0.1:%d/s secret.txt\n"
                                    "http://localhost:%d/t other.txt\n" % (port, port))
        assert wait_state(app, alice, job_id) == "FINISHED"
        assert "loopback-only-secret" not in output(alice, job_id)
        assert "get_input_files 2" in output(alice, job_id, "io-status")
        assert Secret.hits == []
    finally:
        server.shutdown()
        server.server_close()


def test_processes_together_are_held_to_the_jobs_memory(grid):
    app, users = grid()
    alice = users["alice"]
    if not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("no memory cgroup on this host: only each process is limited")
    hog = "python3 -c 'import time; x = bytearray(40 * 2**20); time.sleep(3)'"
    job_id = submit(app, alice, "::EXECUTE::\n%s\n::MEMORY::\n64\n::RETRIES::\n0\n"
                    % " & ".join([hog] * 4 + ["wait"]))
    assert wait_state(app, alice, job_id) == "FAILED"
    assert "MEMORY: the job used more than its MEMORY of 64 MB" in status(app, alice, job_id)


def test_outputs_stay_within_the_users_quota(grid):
    app, users = grid(user_quota_mb="2")
    alice = users["alice"]
    small = submit(app, alice, "::EXECUTE::\nhead -c 500000 /dev/zero > a.bin\necho small\n"
                               "::OUTPUTFILES::\na.bin\n")
    assert wait_state(app, alice, small) == "FINISHED"
    assert os.path.getsize(os.path.join(alice["home"], "a.bin")) == 500000
    big = submit(app, alice, "::EXECUTE::\nhead -c 3000000 /dev/zero > b.bin\necho big\n"
                             "::OUTPUTFILES::\nb.bin\n")
    assert wait_state(app, alice, big) == "FINISHED"
    assert "QUOTA: the job's outputs" in status(app, alice, big)
    assert not os.path.exists(os.path.join(alice["home"], "b.bin"))
    assert output(alice, big) == ""
    dashboard = app.backend(alice, "dashboard", [])
    assert re.search(r"Home disk use\s+[\d.]+ KB of 2\.0 MB \(\d+%\)", dashboard), dashboard
