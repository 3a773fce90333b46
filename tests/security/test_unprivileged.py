"""The appliance run as an ordinary user: jobs cannot get identities of their
own, so the local resource runs only the admins' jobs, and even those cannot
reach the state folder (user and mount namespaces cover it)."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ENTRY, IN_CI, Appliance, exit_code, wait_for

NOBODY = 65534
PYTHON = "/usr/bin/python3"  # the test venv's python lives in root's home


@pytest.fixture
def unprivileged_appliance():
    if os.geteuid() != 0 or not os.path.exists(PYTHON):
        message = "needs root (to start the appliance as nobody) and %s" % PYTHON
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    folder = tempfile.mkdtemp(prefix="mig-unpriv-", dir="/var/tmp")
    os.chmod(folder, 0o755)
    os.chown(folder, NOBODY, NOBODY)
    command = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
               "env", "HOME=%s" % folder, PYTHON, ENTRY]
    app = Appliance(command, os.path.join(folder, "state"))
    app.cli("user", "list")
    try:
        yield app
    finally:
        app.stop()
        shutil.rmtree(folder, ignore_errors=True)


def submit(app, user, text):
    reply = app.backend(user, "textarea", [("mrsltextarea_0", text)])
    assert exit_code(reply) == 0, reply
    return re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)


def status(app, user, job_id):
    return app.backend(user, "jobstatus", [("job_id", job_id)])


def test_only_the_admins_jobs_run_and_they_cannot_reach_the_state(unprivileged_appliance):
    app = unprivileged_appliance
    subprocess.run(app.command + ["user", "add", "boss", "--admin", "--state", app.state],
                   check=True, capture_output=True, timeout=60)
    plain = app.add_user("dave")
    boss = {"cert": os.path.join(app.state, "users", "boss", "user.crt"),
            "key": os.path.join(app.state, "users", "boss", "user.key")}
    app.start()
    said = b"".join(app.proc.stdout.readline() for _ in range(3)).decode()
    assert "only the admins' jobs run locally" in said, said
    probe = ("ls %s && echo LEAK-list\ncat %s/secret.key && echo LEAK-secret\n"
             "touch %s/x && echo LEAK-write\necho probe-done\n::RETRIES::\n0\n"
             % (app.state, app.state, app.state)).replace("\n::", "\n\n::")
    allowed = submit(app, boss, "::EXECUTE::\n" + probe)
    refused = submit(app, plain, "::EXECUTE::\necho should-not-run\n\n::RETRIES::\n0\n")
    wait_for(lambda: "Status: FINISHED" in status(app, boss, allowed), timeout=60,
             what="the admin's job")
    out_path = os.path.join(app.state, "home", "boss", "job_output", allowed,
                            allowed + ".stdout")
    with open(out_path) as handle:
        seen = handle.read()
    assert "probe-done" in seen and "LEAK" not in seen, seen
    wait_for(lambda: "Status: FAILED" in status(app, plain, refused), timeout=60,
             what="the plain user's job to be refused")
    assert "runs only the admins' jobs" in status(app, plain, refused)
