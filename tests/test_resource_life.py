"""Resource life in a running grid, against a real sshd on loopback: a resource
registered while the grid runs gets jobs, stop/start, status and clean from
the portal, trust on first use, and the keep-alive following sshd down and up."""

import json
import os
import re

import pytest

from conftest import after_two_passes, exit_code, post_backend, require_tool, set_config, wait_for
from mig.execute.sshremote import ensure_grid_key
from test_ssh_resources import (USER, Sshd, kill_tree, only_remote_resources, sshd_resource_conf,
                                state_of, submit)


def monitor(app, user):
    """{unit id: (status, last seen)} from the Monitor's JSON."""
    objects = json.loads(app.curl(user, "URL/api/monitor"))
    rows = [o for o in objects if o.get("kind") == "monitor"][0]["rows"]
    return {"%s_%s" % (r[0], r[1]): (r[2], r[3]) for r in rows}


@pytest.fixture
def remote_grid(appliance_factory, tmp_path):
    """A running grid with no resources at all, and an sshd that is not registered yet."""
    sshd = Sshd()
    app = appliance_factory()
    try:
        alice = app.add_user("alice")
        only_remote_resources(app.state)
        set_config(app.state, scheduler_tick="1.0", resource_keepalive="1.0")
        sshd.authorize(ensure_grid_key(os.path.join(app.state, "ssh")))
        sshd.start()
        app.start()
        yield app, alice, sshd, tmp_path
    finally:
        app.stop()
        sshd.stop()


def register(app, sshd, tmp_path, host_key):
    conf = tmp_path / "res.conf"
    conf.write_text(sshd_resource_conf(sshd, host_key))
    return json.loads(app.cli("resource", "add", "--conf", str(conf), "--owner", "alice",
                              "--json").stdout)["name"]


def test_registered_while_running_then_stopped_started_checked_and_cleaned(remote_grid):
    app, alice, sshd, tmp_path = remote_grid
    name = register(app, sshd, tmp_path, sshd.public_host_key())  # the CLI, grid running
    unit = name + "_exe"
    wait_for(lambda: unit in monitor(app, alice), 10, what="the grid to pick up the resource")
    job = submit(app, alice, "::EXECUTE::\nwhoami\n\n::RESOURCE::\n%s\n" % unit)
    wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60, what="the first ssh job")

    reply = post_backend(app, alice, "stopexe", [("unique_resource_name", name), ("exe_name", "exe")])
    assert exit_code(reply) == 0 and monitor(app, alice)[unit][0] == "offline: stopped by owner"
    waiting = submit(app, alice, "::EXECUTE::\necho after the start\n\n::RESOURCE::\n%s\n" % unit)
    feasible = after_two_passes(app, alice, waiting)
    assert state_of(app, alice, waiting) == "QUEUED"
    assert re.search(r"%s\s+ORANGE\s+fits, but the resource is offline: stopped by owner"
                     % re.escape(unit), feasible), feasible
    reply = post_backend(app, alice, "startexe", [("unique_resource_name", name)])
    assert exit_code(reply) == 0 and "Started every exe unit of %s" % name in reply
    wait_for(lambda: state_of(app, alice, waiting) == "FINISHED", 60, what="the job after start")
    assert app.curl(alice, "--fail", "URL/cert_redirect/job_output/%s/%s.stdout"
                    % (waiting, waiting)) == "after the start\n"

    reply = post_backend(app, alice, "resstatus", [("unique_resource_name", name)])
    assert exit_code(reply) == 0 and "%s: reachable" % name in reply
    leftover = "/home/%s/mig/job-left-over" % USER
    os.makedirs(leftover, exist_ok=True)
    reply = post_backend(app, alice, "resclean", [("unique_resource_name", name)])
    assert exit_code(reply) == 0 and "job folders removed" in reply
    assert not os.path.exists(leftover)


def test_trust_on_first_use_pins_the_key_the_host_shows(remote_grid):
    require_tool("ssh-keyscan", "apt-get install openssh-client")
    app, alice, sshd, tmp_path = remote_grid
    wrong = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogusBogusBogusBogusBogusBogusBogusBogus"
    name = register(app, sshd, tmp_path, wrong)
    text = sshd_resource_conf(sshd, wrong).replace("::HOSTKEY::\n%s\n\n" % wrong, "")
    reply = post_backend(app, alice, "reseditaction", [("unique_resource_name", name),
                                               ("resconfig", text)])
    assert exit_code(reply) == 100 and "removes HOSTKEY" in reply  # never silently
    reply = post_backend(app, alice, "reseditaction", [("unique_resource_name", name),
                                               ("resconfig", text),
                                               ("trust_on_first_use", "true")])
    assert exit_code(reply) == 0, reply
    shown = json.loads(app.cli("resource", "show", name, "--json").stdout)
    assert shown["conf"]["HOSTKEY"] == sshd.public_host_key()
    job = submit(app, alice, "::EXECUTE::\ntrue\n\n::RESOURCE::\n%s_exe\n" % name)
    wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60, what="a job with the new key")


def test_keepalive_follows_sshd_down_and_up(remote_grid):
    app, alice, sshd, tmp_path = remote_grid
    name = register(app, sshd, tmp_path, sshd.public_host_key())
    unit = name + "_exe"
    wait_for(lambda: monitor(app, alice).get(unit, ("", "-"))[1] != "-", 15,
             what="the keep-alive to see the resource")
    kill_tree(sshd.proc.pid)  # the host's sshd dies, with its connections
    sshd.proc.wait()
    down = wait_for(lambda: monitor(app, alice)[unit][0].startswith("offline: keep-alive: ")
                    and monitor(app, alice)[unit][0], 20, what="the keep-alive to see it down")
    assert "refused" in down.lower() or "closed" in down.lower(), down
    job = submit(app, alice, "::EXECUTE::\ntrue\n\n::RESOURCE::\n%s\n" % unit)
    feasible = after_two_passes(app, alice, job)
    assert state_of(app, alice, job) == "QUEUED"  # no job is sent to a host that is down
    assert re.search(r"%s\s+ORANGE\s+fits, but the resource is offline: keep-alive: "
                     % re.escape(unit), feasible), feasible
    sshd.start()  # back, with the same port and host key
    wait_for(lambda: monitor(app, alice)[unit][0] == "online", 20,
             what="the keep-alive to see it up again")
    wait_for(lambda: state_of(app, alice, job) == "FINISHED", 60, what="the job after the return")
