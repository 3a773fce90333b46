"""Sweeps and polite polling against a real server."""

import re
import time
import urllib.parse

from conftest import exit_code, https_connection, post, wait_for


def call(conn, token, name, fields):
    return post(conn, "/cgi-bin/%s.py" % name,
                urllib.parse.urlencode([("output_format", "txt")] + list(fields)), token)[1]


def test_sweep_runs_every_combination_and_can_be_cancelled(appliance_factory):
    app = appliance_factory()
    alice = app.add_user("alice")
    app.start()
    conn = https_connection(app)
    token = alice["token"]
    since = "0"
    reply = call(conn, token, "sweep", [
        ("mrsltextarea_0", "::EXECUTE::\necho value +x+ +y+ index +INDEX+ > r.txt\n\n"
                           "::OUTPUTFILES::\nr.txt results/+x+-+y+.txt\n\n::JOBNAME::\ns+INDEX+\n"),
        ("params", "x=0:4\ny=a,b"), ("idempotency_key", "sweep-1")])
    assert exit_code(reply) == 0 and "8 jobs" in reply, reply
    sweep_id = re.search(r"Sweep (sweep_\S+) accepted", reply).group(1)
    again = call(conn, token, "sweep", [("mrsltextarea_0", "::EXECUTE::\necho +x+\n"),
                                        ("params", "x=1"), ("idempotency_key", "sweep-1")])
    assert sweep_id in again  # the retried request made no second sweep

    def finished():
        status = call(conn, token, "sweepstatus", [("sweep_id", sweep_id)])
        row = [line.split() for line in status.splitlines() if line.startswith(sweep_id)][0]
        header = [line.split() for line in status.splitlines() if line.startswith("Sweep ID")][0]
        return dict(zip(header[5:], row[3:])).get("FINISHED") == "8"
    wait_for(finished, 60, what="the sweep to finish")
    home = alice["home"]
    assert open("%s/results/3-b.txt" % home).read() == "value 3 b index 7\n"

    # polite polling: one call returns the jobs that changed since the last one
    reply = call(conn, token, "jobchanges", [("since", since)])
    now = re.search(r"^now: (\S+)$", reply, re.M).group(1)
    assert len(re.findall(r"^\d+_\S+\s+FINISHED", reply, re.M)) == 8
    assert "FINISHED" not in call(conn, token, "jobchanges", [("since", now)])

    # a big sweep is accepted at once, then cancelled as a whole
    start = time.time()
    reply = call(conn, token, "sweep", [("mrsltextarea_0", "::EXECUTE::\nsleep +n+\n\n"
                                                          "::ARCHITECTURE::\nSPARC\n"),
                                        ("params", "n=0:100000")])
    assert exit_code(reply) == 0 and time.time() - start < 5
    big = re.search(r"Sweep (sweep_\S+) accepted", reply).group(1)
    reply = call(conn, token, "sweepaction", [("sweep_id", big), ("action", "cancel")])
    assert exit_code(reply) == 0 and "canceled" in reply
    reply = call(conn, token, "sweepstatus", [("sweep_id", big)])
    assert re.search(r"^%s\s+CANCELED\s+100000\s+0\b" % big, reply, re.M), reply


def test_docs_search_and_show_as_migdoc_uses_them(appliance_factory):
    app = appliance_factory()
    alice = app.add_user("alice")
    app.start()
    conn = https_connection(app)
    topics = call(conn, alice["token"], "docs", [("search", "*")])
    assert exit_code(topics) == 0 and "mrsl" in topics and "states" in topics
    shown = call(conn, alice["token"], "docs", [("show", "states")])
    assert "RETRY" in shown and "Can become" in shown
    assert "No topics matching nothing-like-this" in call(conn, alice["token"], "docs",
                                                          [("search", "nothing-like-this")])
