"""Runtime environments in a running appliance, over HTTPS with MiG's backend
names: define one (never changed), resources declare it with the value of
each variable (the appliance host through its admins, registered resources in
their configuration), a job that asks for it runs only where it is provided,
with the variables exported, and only its creator deletes it, while nobody
provides it."""

import json
import re

import pytest

from conftest import after_two_passes, exit_code, post_backend, resource_conf, set_config, wait_for

# upstream MiG's mig/user/examples/generecon_RE.mRSL, as users have it
GENERECON_RE = """::RUNTIMEENVIRONMENT::
GENERECON-2.1.3

::EXECUTE::
$GENERECON_HOME/generecon run-1304.scm

::JOBNAME::
GeneRecon-1304

::INPUTFILES::
run-1304.scm

::OUTPUTFILES::
locus.txt +JOBID+/locus.txt
cluster.txt +JOBID+/cluster.txt
connectedness.txt +JOBID+/connectedness.txt
likelihood.txt +JOBID+/likelihood.txt

::CPUTIME::
345600

::MAXPRICE::
100000
"""

JOB = """::EXECUTE::
echo "$PYTHON3"
$PYTHON3 -c 'print(6 * 7)'

::RUNTIMEENVIRONMENT::
PYTHON3
"""


@pytest.fixture
def grid(appliance_factory):
    app = appliance_factory()
    users = {name: app.add_user(name) for name in ("alice", "bob")}
    users["root"] = json.loads(app.cli("user", "add", "root", "--admin", "--json").stdout)
    set_config(app.state, scheduler_tick="0.5", resource_keepalive="0")
    app.start()
    return app, users


def call(app, user, name, *fields):
    return post_backend(app, user, name, list(fields))


def submitted(reply):
    assert exit_code(reply) == 0, reply
    return re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]


def host_reason(feasible):
    return re.search(r"^\S+\s+localhost\.0_local\s+\w+\s+(.*)$", feasible, re.M).group(1)


def status(app, user, job_id):
    return re.search(r"^Status: (\w+)", call(app, user, "jobstatus", ("job_id", job_id)),
                     re.M).group(1)


def test_a_job_gets_its_runtime_environment_only_where_it_is_provided(grid):
    app, u = grid
    alice, bob, root = u["alice"], u["bob"], u["root"]
    # Not defined yet: a job asking for it is refused at once.
    reply = call(app, bob, "textarea", ("mrsltextarea_0", JOB))
    assert exit_code(reply) != 0 and "PYTHON3 do not exist on this grid" in reply
    reply = call(app, alice, "createre", ("re_name", "python3"),
                 ("redescription", "Python 3 interpreter"),
                 ("software", "name=python;version=3;url=https://python.org;description=CPython"),
                 ("environment", "name=PYTHON3;example=/usr/bin/python3;description=the "
                                 "interpreter"))
    assert exit_code(reply) == 0 and "Created PYTHON3." in reply
    reply = call(app, bob, "createre", ("re_name", "PYTHON3"))
    assert exit_code(reply) == 100 and "a new version is a new name" in reply

    job_id = submitted(call(app, bob, "textarea", ("mrsltextarea_0", JOB)))
    assert host_reason(after_two_passes(app, bob, job_id)) == (
        "RUNTIMEENVIRONMENT: the resource does not offer PYTHON3")

    # Only admins declare what the host provides; every variable needs a value.
    assert exit_code(call(app, bob, "sethostruntimeenvs",
                          ("runtimeenvironment", "name: PYTHON3\nPYTHON3=/bin/false"))) == 104
    reply = call(app, root, "sethostruntimeenvs", ("runtimeenvironment", "name: PYTHON3"))
    assert exit_code(reply) == 100 and "PYTHON3 needs a value for PYTHON3" in reply
    reply = call(app, root, "sethostruntimeenvs",
                 ("runtimeenvironment", "name: PYTHON3\nPYTHON3=/usr/bin/python3"))
    assert exit_code(reply) == 0, reply
    wait_for(lambda: status(app, bob, job_id) == "FINISHED", 60, what="the job")
    out = app.curl(bob, "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id))
    assert out == "/usr/bin/python3\n42\n"

    # showre lists the provider; the creator may not delete it while it is provided.
    reply = call(app, bob, "showre", ("re_name", "PYTHON3"))
    assert re.search(r"^localhost\.0\s+PYTHON3=/usr/bin/python3$", reply, re.M), reply
    assert exit_code(call(app, bob, "deletere", ("re_name", "PYTHON3"))) == 104
    reply = call(app, alice, "deletere", ("re_name", "PYTHON3"))
    assert exit_code(reply) == 100 and "provided by localhost.0" in reply
    assert exit_code(call(app, root, "sethostruntimeenvs", ("runtimeenvironment", ""))) == 0
    assert exit_code(call(app, alice, "deletere", ("re_name", "PYTHON3"))) == 0
    assert "PYTHON3" not in call(app, alice, "redb")


def test_upstream_generecon_job_is_accepted_once_its_environment_exists(grid):
    app, u = grid
    reply = call(app, u["bob"], "textarea", ("mrsltextarea_0", GENERECON_RE))
    assert exit_code(reply) != 0 and "GENERECON-2.1.3 do not exist" in reply
    assert exit_code(call(app, u["alice"], "createre", ("re_name", "GENERECON-2.1.3"),
                          ("environment", "name=GENERECON_HOME;example=/opt/generecon"))) == 0
    job_id = submitted(call(app, u["bob"], "textarea", ("mrsltextarea_0", GENERECON_RE)))
    assert status(app, u["bob"], job_id) == "QUEUED"


def test_a_resource_declares_what_it_provides_in_its_configuration(grid):
    app, u = grid
    root = u["root"]
    call(app, u["alice"], "createre", ("re_name", "POVRAY-3.6"),
         ("environment", "name=POVRAY_HOME;example=/opt/povray"))
    for declared, problem in (("name: NOPE", "NOPE is not a runtime environment of this grid"),
                              ("name: POVRAY-3.6", "POVRAY-3.6 needs a value for POVRAY_HOME"),
                              ("name: POVRAY-3.6\nPOVRAY_HOME=/opt/p\nOTHER=1",
                               "POVRAY-3.6 declares no variable OTHER")):
        conf = resource_conf("127.0.0.1", ["name=exe0"], port=9,
                             after=[("RUNTIMEENVIRONMENT", declared)])
        reply = call(app, root, "reseditaction", ("resconfig", conf))
        assert exit_code(reply) == 100 and problem in reply, reply
    conf = resource_conf("127.0.0.1", ["name=exe0"], port=9,
                         after=[("RUNTIMEENVIRONMENT", "name: POVRAY-3.6\nPOVRAY_HOME=/opt/p")])
    assert exit_code(call(app, root, "reseditaction", ("resconfig", conf))) == 0
    reply = call(app, root, "showre", ("re_name", "POVRAY-3.6"))
    assert re.search(r"^127\.0\.0\.1\.0\s+POVRAY_HOME=/opt/p$", reply, re.M), reply


def test_the_runtime_environment_guide_runs(grid, tmp_path):
    """The curl lines of docs/runtimeenvs.md, as one script, with the users' certificates;
    then its example job runs with the variable set."""
    import os
    import shutil
    import subprocess
    app, u = grid
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "runtimeenvs.md")
    with open(docs, encoding="utf-8") as handle:
        text = handle.read()
    script = re.findall(r"```sh\n(.*?)```", text, re.S)
    job = re.findall(r"```mrsl\n(.*?)```", text, re.S)
    assert len(script) == 1 and len(job) == 1
    shutil.copy(app.ca, tmp_path / "ca.crt")
    for name, user in u.items():
        shutil.copy(user["cert"], tmp_path / ("%s.crt" % name))
        shutil.copy(user["key"], tmp_path / ("%s.key" % name))
    result = subprocess.run(["bash", "-e", "-c", script[0].replace("https://localhost:8443",
                                                                    app.url)],
                            cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    replies = ["Exit code:" + r for r in result.stdout.split("Exit code:")[1:]]
    assert [exit_code(r) for r in replies] == [0, 0, 0], result.stdout
    assert re.search(r"^localhost\.0\s+PYTHON3=/usr/bin/python3$", replies[2], re.M)
    job_id = submitted(call(app, u["bob"], "textarea", ("mrsltextarea_0", job[0])))
    wait_for(lambda: status(app, u["bob"], job_id) == "FINISHED", 60, what="the job")
    out = app.curl(u["bob"], "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id))
    assert out == "/usr/bin/python3\n42\n"


def test_a_job_needs_both_its_vgrid_and_its_runtime_environment(appliance_factory):
    """::VGRID:: and ::RUNTIMEENVIRONMENT:: together: the job waits, with jobfeasible
    naming the one condition still missing, until the host both serves the VGrid
    (listed and accepted) and provides the environment; then it runs with the
    variable set."""
    from conftest import grid_with_vgrid
    app, u = grid_with_vgrid(appliance_factory, ("alice", "bob"), {"bob": "Lab"},
                             local_vgrids="Generic, Lab", scheduler_tick="0.5")
    root = json.loads(app.cli("user", "add", "root", "--admin", "--json").stdout)
    assert exit_code(call(app, u["alice"], "createre", ("re_name", "PYTHON3"), (
        "environment", "name=PYTHON3;example=/usr/bin/python3"))) == 0
    job_id = submitted(call(app, u["bob"], "textarea", (
        "mrsltextarea_0", JOB + "\n::VGRID::\nLab\n")))
    assert host_reason(after_two_passes(app, u["bob"], job_id)) == (
        "RUNTIMEENVIRONMENT: the resource does not offer PYTHON3; VGRID: the resource offers "
        "to serve Lab, but Lab has not accepted it as a resource (its owners add it with "
        "addvgridres)")
    assert exit_code(call(app, root, "sethostruntimeenvs",
                          ("runtimeenvironment", "name: PYTHON3\nPYTHON3=/usr/bin/python3"))) == 0
    assert host_reason(after_two_passes(app, u["bob"], job_id)).startswith(
        "VGRID: the resource offers to serve Lab")
    assert status(app, u["bob"], job_id) == "QUEUED"
    assert exit_code(call(app, u["alice"], "addvgridres", ("vgrid_name", "Lab"),
                          ("unique_resource_name", "localhost.0"))) == 0
    wait_for(lambda: status(app, u["bob"], job_id) == "FINISHED", 60, what="the job")
    out = app.curl(u["bob"], "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id))
    assert out == "/usr/bin/python3\n42\n"


def test_a_resource_owner_runs_the_environments_test_job(grid):
    app, u = grid
    assert exit_code(call(app, u["alice"], "createre", ("re_name", "PY-TEST"),
                          ("environment", "name=PYTHON3;example=/usr/bin/python3"),
                          ("testprocedure", "::EXECUTE::\n$PYTHON3 -c 'print(6 * 7)'\n"),
                          ("verifystdout", "^42$"))) == 0
    reply = call(app, u["root"], "testresupport", ("re_name", "PY-TEST"),
                 ("unique_resource_name", "localhost.0"))
    assert exit_code(reply) == 100 and "localhost.0 does not provide PY-TEST" in reply
    assert exit_code(call(app, u["root"], "sethostruntimeenvs", (
        "runtimeenvironment", "name: PY-TEST\nPYTHON3=/usr/bin/python3"))) == 0
    assert exit_code(call(app, u["bob"], "testresupport", ("re_name", "PY-TEST"),
                          ("unique_resource_name", "localhost.0"))) == 104
    job_id = submitted(call(app, u["root"], "testresupport", ("re_name", "PY-TEST"),
                            ("unique_resource_name", "localhost.0")))
    wait_for(lambda: status(app, u["root"], job_id) == "FINISHED", 60, what="the test job")
    reply = call(app, u["root"], "jobstatus", ("job_id", job_id))
    assert re.search(r"^Verified: SUCCESS - stdout: OK$", reply, re.M), reply
