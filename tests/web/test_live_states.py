"""States are truthful: a job handed to the local resource that waits for a
free slot says so (on its page and in the Monitor), and a running job's
CPUTIME counts from its real start."""

import re
import urllib.parse

from conftest import exit_code, https_connection, post, set_config, wait_for

SLEEPER = "::EXECUTE::\nsleep 60\n\n::CPUTIME::\n100\n"


def call(app, token, path, body):
    conn = https_connection(app)
    try:
        return post(conn, path, body, token)[1]
    finally:
        conn.close()


def test_a_staged_job_says_it_has_not_started(appliance_factory):
    app = appliance_factory()
    alice = app.add_user("alice")
    set_config(app.state, local_slots=1, local_staging=1)
    app.start()
    token = alice["token"]
    jobs = []
    for _ in range(2):
        reply = call(app, token, "/cgi-bin/textarea.py",
                     "output_format=txt&mrsltextarea_0=" + urllib.parse.quote(SLEEPER))
        jobs.append(re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1))
    first, second = jobs

    def page(job_id):
        return call(app, token, "/cgi-bin/jobview.py", "output_format=txt&job_id=" + job_id)
    wait_for(lambda: "CPUTIME left" in page(first), what="the first job to start")
    started = re.search(r"^Started\s+(.*)$", page(first), re.M).group(1)
    assert int(re.search(r"CPUTIME left: (\d+) s", started).group(1)) in range(90, 101)
    wait_for(lambda: re.search(r"^Status\s+EXECUTING$", page(second), re.M),
             what="the second job to be handed over")
    assert re.search(r"^Started\s+not yet: handed to localhost\.0_local, it waits there "
                     r"for a free slot$", page(second), re.M), page(second)
    monitor = call(app, token, "/cgi-bin/monitor.py", "output_format=txt")
    row = [line for line in monitor.splitlines() if line.startswith("localhost")][0]
    assert "1 of 1 (+1 staged)" in row and "%s (staged: waits for a free slot)" % second in row
    reply = call(app, token, "/cgi-bin/jobaction.py",
                 "output_format=txt&action=cancel&job_id=%s&job_id=%s" % (first, second))
    assert exit_code(reply) == 0, reply
