"""The whole newcomer journey with nothing but curl, against a real server.

Runs twice: from the checkout and from the zipapp built by `make pyz`.
"""

import os
import re
import subprocess
import sys
import uuid

import pytest

from conftest import ENTRY, PYZ, ROOT, exit_code, require_tool, wait_for

JOB = """\
::EXECUTE::
cat input.txt
tr a-z A-Z < input.txt > shout.txt
echo job +JOBID+ named +JOBNAME+

::INPUTFILES::
data/in.txt input.txt

::OUTPUTFILES::
shout.txt results/shout-+JOBID+.txt

::JOBNAME::
journey
"""


@pytest.fixture(scope="session")
def pyz_path():
    result = subprocess.run(["make", "-s", "pyz", "PYTHON=%s" % sys.executable], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(PYZ)
    return PYZ


def job_state(app, user, job_id):
    reply = app.backend(user, "jobstatus", [("job_id", job_id)])
    match = re.search(r"^Status: (\w+)$", reply, re.M)
    return match.group(1) if match else None


def submit_text(app, user, text):
    reply = app.backend(user, "textarea", [("mrsltextarea_0", text)])
    assert exit_code(reply) == 0, reply
    return re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)


@pytest.mark.parametrize("flavour", ["checkout", "pyz"])
def test_curl_journey(appliance_factory, flavour, request, tmp_path):
    require_tool("curl", "apt-get install curl")
    if flavour == "pyz":
        command = [sys.executable, request.getfixturevalue("pyz_path")]
    else:
        command = [sys.executable, ENTRY]
    app = appliance_factory(command=command)
    alice = app.add_user("alice")  # from an empty state folder
    assert set(alice) >= {"name", "dn", "cert", "key", "p12", "p12_password", "ca", "token", "home"}
    assert all(os.path.isabs(alice[k]) for k in ("cert", "key", "p12", "ca", "home"))
    bob = app.add_user("bob")
    app.start()

    # upload an input file (into a folder) and the job description
    local_in = tmp_path / "in.txt"
    local_in.write_text("hello grid\n")
    assert app.backend(alice, "mkdir", [("path", "data")]).startswith("Exit code: 0")
    reply = app.curl(alice, "-T", str(local_in), "-X", "CERTPUT", "URL/cert_redirect/data/in.txt")
    assert reply.splitlines()[0] == "0", reply
    local_job = tmp_path / "journey.mRSL"
    local_job.write_text(JOB)
    assert app.curl(alice, "-T", str(local_job), "-X", "CERTPUT",
                    "URL/cert_redirect/journey.mRSL").startswith("0")

    # submit the file from the home and follow it to FINISHED
    reply = app.backend(alice, "submit", [("path", "journey.mRSL")])
    assert exit_code(reply) == 0, reply
    job_id = re.search(r"^journey\.mRSL\s+1\s+(\S+)", reply, re.M).group(1)
    assert wait_for(lambda: job_state(app, alice, job_id) == "FINISHED", 60, what="FINISHED")
    status = app.backend(alice, "jobstatus", [("job_id", job_id)])
    assert "Exit status 1: 0 (command: cat input.txt)" in status

    stdout = app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id))
    assert stdout == "hello grid\njob %s named journey\n" % job_id
    shout = app.curl(alice, "--fail", "URL/cert_redirect/results/shout-%s.txt" % job_id)
    assert shout == "HELLO GRID\n"
    status_file = app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.status" % (job_id, job_id))
    assert status_file.splitlines()[0] == "cat input.txt 0"
    missing = subprocess.run(["curl", "-sS", "--fail", "--cacert", app.ca, "--cert", alice["cert"],
                              "--key", alice["key"], app.url + "/cert_redirect/no/such.txt"],
                             capture_output=True, text=True)
    assert missing.returncode == 22 and "404" in missing.stderr

    # a long job cancelled while EXECUTING ends CANCELED and its process is gone
    marker = "%d.%d" % (600, uuid.uuid4().int % 100000 + 1)
    long_id = submit_text(app, alice, "::EXECUTE::\nsleep %s\n" % marker)
    wait_for(lambda: job_state(app, alice, long_id) == "EXECUTING", 30, what="EXECUTING")
    wait_for(lambda: subprocess.run(["pgrep", "-f", "sleep %s" % marker]).returncode == 0, 10,
             what="the sleep process")
    reply = app.backend(alice, "jobaction", [("action", "cancel"), ("job_id", long_id)],
                        raw_prefix="_=certauth;output_format=txt&action=cancel")
    assert exit_code(reply) == 0 and "EXECUTING" in reply and "CANCELED" in reply, reply
    assert job_state(app, alice, long_id) == "CANCELED"
    wait_for(lambda: subprocess.run(["pgrep", "-f", "sleep %s" % marker]).returncode == 1, 10,
             what="the sleep process to be gone")

    # a job no resource can run stays queued, and jobfeasible says why
    sparc_id = submit_text(app, alice, "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n")
    reply = app.backend(alice, "jobfeasible", [("job_id", sparc_id)])
    assert exit_code(reply) == 0
    assert "RED" in reply and "ARCHITECTURE: the job needs SPARC" in reply, reply
    assert job_state(app, alice, sparc_id) == "QUEUED"
    assert "Waiting: no resource can run this job" in app.backend(
        alice, "jobstatus", [("job_id", sparc_id)])

    # a malformed mRSL gets a line-numbered error and nothing is stored
    before = app.backend(alice, "jobstatus", []).count("Job Id:")
    reply = app.backend(alice, "textarea",
                        [("mrsltextarea_0", "::EXECUTE::\necho hi\n\n::CPUTIME::\nlots\n")])
    assert exit_code(reply) == 100
    assert "line 5, keyword CPUTIME" in reply, reply
    assert app.backend(alice, "jobstatus", []).count("Job Id:") == before

    # bob sees none of alice's jobs or files and cannot touch them
    reply = app.backend(bob, "jobstatus", [("job_id", job_id)])
    assert exit_code(reply) == 100 and "do not have any matching job IDs" in reply
    assert "Job Id:" not in app.backend(bob, "jobstatus", [])
    reply = app.backend(bob, "jobaction", [("job_id", sparc_id)],
                        raw_prefix="_=certauth;output_format=txt&action=cancel")
    assert exit_code(reply) == 100
    assert job_state(app, alice, sparc_id) == "QUEUED"
    assert "journey.mRSL" not in app.backend(bob, "ls", [("path", ".")])
    reply = app.backend(bob, "cat", [("path", "../alice/data/in.txt")])
    assert exit_code(reply) != 0 and "hello grid" not in reply
    blocked = subprocess.run(["curl", "-sS", "--fail", "--cacert", app.ca, "--cert", bob["cert"],
                              "--key", bob["key"], app.url + "/cert_redirect/data/in.txt"],
                             capture_output=True, text=True)
    assert blocked.returncode == 22 and "hello grid" not in blocked.stdout
