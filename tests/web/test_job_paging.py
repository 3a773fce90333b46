"""Replies about many jobs are bounded: jobstatus pages (1000 jobs a reply,
offset= for the next), and the Jobs page searches the archive on request."""

import re

from conftest import exit_code, post_fields

RUNNABLE_NOWHERE = "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n"


def test_jobstatus_pages_a_thousand_jobs_at_a_time(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    for _ in range(11):  # 1,012 jobs, 92 per request
        reply = post_fields(app, token, "/cgi-bin/textarea.py", [("output_format", "txt")] + [
            ("mrsltextarea_%d" % n, RUNNABLE_NOWHERE) for n in range(92)])
        assert exit_code(reply) == 0, reply
    first = post_fields(app, token, "/cgi-bin/jobstatus.py", [("output_format", "txt")])
    ids = re.findall(r"^Job Id: (\S+)$", first, re.M)
    assert len(ids) == 1000 and ids[0].startswith("0_") and ids[-1].startswith("999_")
    assert "Showing jobs 1 to 1000 of the 1012 matching jobs (oldest first); ask for the " \
        "next ones with offset=1000" in first
    rest = post_fields(app, token, "/cgi-bin/jobstatus.py", [("output_format", "txt"),
                                                      ("offset", "1000")])
    assert [j.split("_")[0] for j in re.findall(r"^Job Id: (\S+)$", rest, re.M)] == \
        [str(n) for n in range(1000, 1012)]
    few = post_fields(app, token, "/cgi-bin/jobstatus.py", [("output_format", "txt"),
                                                     ("max_jobs", "3")])
    assert len(re.findall(r"^Job Id: ", few, re.M)) == 3
    assert "Only showing first 3 of the 1012 matching jobs as requested" in few
    one = post_fields(app, token, "/cgi-bin/jobstatus.py", [("output_format", "txt"),
                                                     ("job_id", "1011_*")])
    assert re.findall(r"^Job Id: (\S+)$", one, re.M)[0].startswith("1011_")
