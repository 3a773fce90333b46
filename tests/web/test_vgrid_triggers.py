"""VGrid triggers in a running appliance: a file dropped into the shared folder
fires a rule whose job sees the file's path and finishes; the rate limit,
a missing template (logged and told to the rule's owner) and who may add
rules."""

import re

import pytest

from conftest import exit_code, grid_with_vgrid, post_backend, wait_for

TEMPLATE = """::EXECUTE::
echo "got +TRIGGERPATH+ (+TRIGGERCHANGE+)"
wc -c < input.dat

::INPUTFILES::
+TRIGGERPATH+ input.dat
"""


@pytest.fixture
def grid(appliance_factory):
    return grid_with_vgrid(appliance_factory, ("alice", "bob", "dave"), {"bob": "Lab"},
                           scheduler_tick="0.5", trigger_seconds="0.3")


def put(app, user, rel, data):
    reply = app.curl(user, "-X", "PUT", "--data-binary", data, "URL/cert_redirect/" + rel)
    assert reply.startswith("0"), reply
    return reply


def page(app, user):
    reply = post_backend(app, user, "lsvgridtriggers", [("vgrid_name", "Lab")])
    assert exit_code(reply) == 0, reply
    return reply


def checks(app, user):
    found = re.search(r"Checked for changes (\d+) times", page(app, user))
    return int(found.group(1)) if found else 0


def add_rule(app, user, *fields):
    reply = post_backend(app, user, "addvgridtrigger", [("vgrid_name", "Lab")] + list(fields))
    assert exit_code(reply) == 0, reply
    before = checks(app, user)
    wait_for(lambda: checks(app, user) > before, 20, what="a check with the new rule")


def log_rows(app, user):
    """(rule, file, change, job id, result) of the trigger log, newest first."""
    text = page(app, user).split("___WHAT FIRED___", 1)[1].split("___ADD A TRIGGER___")[0]
    return re.findall(r"^\w{3} \w{3} +\d+ [\d:]+ \d{4}\s+(\S+)\s+(\S+)\s+(\w+)\s+(\S+)\s+(.+)$",
                      text, re.M)


def status(app, user, job_id):
    return re.search(r"^Status: (\w+)", post_backend(app, user, "jobstatus",
                                                     [("job_id", job_id)]), re.M).group(1)


def test_the_template_is_the_one_the_rule_was_added_with(grid):
    """bob may write the shared folder, but changing the template after alice added
    her rule does not change what runs as alice."""
    app, u = grid
    alice, bob = u["alice"], u["bob"]
    put(app, alice, "Lab/mine.mRSL", "::EXECUTE::\necho from alice\n")
    assert exit_code(post_backend(app, alice, "mkdir", [("path", "Lab/drop")])) == 0
    add_rule(app, alice, ("rule_id", "mine"), ("path", "drop/*"), ("arguments", "mine.mRSL"))
    put(app, bob, "Lab/mine.mRSL", "::EXECUTE::\necho bob runs as alice\n")
    put(app, bob, "Lab/drop/x", "x")
    rows = wait_for(lambda: log_rows(app, alice), 30, what="the trigger to fire")
    job_id = rows[0][3]
    wait_for(lambda: status(app, alice, job_id) == "FINISHED", 60, what="the job")
    out = app.curl(alice, "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id))
    assert out == "from alice\n"


def test_a_dropped_file_fires_a_job_that_sees_its_path(grid):
    app, u = grid
    bob = u["bob"]
    put(app, u["alice"], "Lab/process.mRSL", TEMPLATE)
    for folder in ("Lab/incoming",):
        assert exit_code(post_backend(app, bob, "mkdir", [("path", folder)])) == 0
    put(app, bob, "Lab/incoming/old.dat", "old")  # there before the rule: fires nothing
    add_rule(app, bob, ("rule_id", "proc"), ("path", "incoming/*.dat"),
             ("arguments", "process.mRSL"), ("settle_time", "0"))
    put(app, bob, "Lab/incoming/a.dat", "12345")
    rows = wait_for(lambda: log_rows(app, bob), 30, what="the trigger to fire")
    assert len(rows) == 1 and rows[0][:3] == ("proc", "incoming/a.dat", "created")
    assert rows[0][4].strip() == "submitted"
    job_id = rows[0][3]
    wait_for(lambda: status(app, bob, job_id) == "FINISHED", 60, what="the triggered job")
    out = app.curl(bob, "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id))
    assert out == "got Lab/incoming/a.dat (created)\n5\n"
    # A file that does not match fires nothing; a change of a matching one fires again.
    put(app, bob, "Lab/incoming/a.txt", "x")
    put(app, bob, "Lab/incoming/a.dat", "1234567")
    rows = wait_for(lambda: len(log_rows(app, bob)) == 2 and log_rows(app, bob), 30,
                    what="the second firing")
    assert rows[0][:3] == ("proc", "incoming/a.dat", "modified")


def test_rate_limit_missing_template_and_rights(grid):
    app, u = grid
    alice, dave = u["alice"], u["dave"]
    reply = post_backend(app, dave, "addvgridtrigger", [
        ("vgrid_name", "Lab"), ("rule_id", "x"), ("path", "*"), ("arguments", "t.mRSL")])
    assert exit_code(reply) == 104
    for folder in ("Lab/burst", "Lab/broken"):
        assert exit_code(post_backend(app, alice, "mkdir", [("path", folder)])) == 0
    put(app, alice, "Lab/one.mRSL", "::EXECUTE::\ntrue\n")
    put(app, alice, "Lab/refused.mRSL", "::EXECUTE::\ntrue\n\n::VGRID::\nNowhere\n")
    reply = post_backend(app, alice, "addvgridtrigger", [
        ("vgrid_name", "Lab"), ("rule_id", "x"), ("path", "*"), ("arguments", "missing.mRSL")])
    assert exit_code(reply) == 100 and "missing.mRSL is missing" in reply
    add_rule(app, alice, ("rule_id", "once"), ("path", "burst/*"), ("arguments", "one.mRSL"),
             ("rate_limit", "1/h"))
    add_rule(app, alice, ("rule_id", "broken"), ("path", "broken/*"),
             ("arguments", "refused.mRSL"))
    put(app, alice, "Lab/burst/1", "1")
    wait_for(lambda: len(log_rows(app, alice)) == 1, 30, what="the first firing")
    put(app, alice, "Lab/burst/2", "2")
    put(app, alice, "Lab/broken/x", "x")
    rows = wait_for(lambda: len(log_rows(app, alice)) == 3 and log_rows(app, alice), 30,
                    what="three log entries")
    results = sorted((r[0], r[1], r[4].strip()) for r in rows)
    assert results[0][:2] == ("broken", "broken/x")
    assert results[0][2].startswith(
        "failed: keyword VGRID: you are not a member of the VGrid(s) Nowhere")
    assert [r[2] for r in results[1:]] == ["submitted", "skipped: over the rate limit 1/h"]
    inbox = post_backend(app, alice, "inbox", [])
    assert "Trigger broken of Lab failed" in inbox
