"""A damaged job record, end to end: the appliance starts, the owner gets a
clear error for that job, and the administrator sees it on the Dashboard."""

import os
import re
import sqlite3
import urllib.parse

from conftest import exit_code, https_connection, post


def call(app, token, path, body):
    conn = https_connection(app)
    try:
        return post(conn, path, body, token)
    finally:
        conn.close()


def admin_token(app):
    with open(os.path.join(app.state, "admin-credentials.txt")) as handle:
        return re.search(r"^token: (\S+)$", handle.read(), re.M).group(1)


def test_a_damaged_record_is_reported_to_its_owner_and_the_admin(alice_grid):
    app, alice = alice_grid
    token = alice["token"]
    jobs = []
    for _ in range(2):
        _status, reply = call(app, token, "/cgi-bin/textarea.py", "output_format=txt&"
                              "mrsltextarea_0=" + urllib.parse.quote(
                                  "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n"))
        jobs.append(re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1))
    damaged, healthy = jobs
    call(app, token, "/cgi-bin/jobaction.py", "output_format=txt&action=cancel&job_id="
         + damaged)
    app.stop()  # a clean stop: its checkpoint puts every record in the database
    db = sqlite3.connect(os.path.join(app.state, "db", "jobdb", "jobs.sqlite"))
    seq = int(damaged.split("_")[0])
    blob = bytearray(db.execute("SELECT record FROM jobs WHERE seq=?", (seq,)).fetchone()[0])
    blob[len(blob) // 2] ^= 0x10  # one flipped bit, as a bad sector would leave it
    db.execute("UPDATE jobs SET record=? WHERE seq=?", (bytes(blob), seq))
    db.commit()
    db.close()
    app.start()
    _status, reply = call(app, token, "/cgi-bin/jobstatus.py",
                          "output_format=txt&job_id=" + damaged)
    assert exit_code(reply) == 200, reply
    assert "the stored record of job %s is damaged; it was set aside" % damaged in reply
    _status, reply = call(app, token, "/cgi-bin/jobstatus.py",
                          "output_format=txt&job_id=" + healthy)
    assert exit_code(reply) == 0 and "Status: QUEUED" in reply
    _status, dashboard = call(app, admin_token(app), "/cgi-bin/dashboard.py",
                              "output_format=txt")
    notice = dashboard.split("___DAMAGED JOB RECORDS___", 1)[1].split("\n___", 1)[0]
    assert "stored bytes are damaged (quarantined in the job database; see the log): 1" \
        in notice
    assert re.search(r"^%s\s+alice\s+checksum mismatch" % re.escape(damaged), notice, re.M)
    _status, own = call(app, token, "/cgi-bin/dashboard.py", "output_format=txt")
    assert "DAMAGED JOB RECORDS" not in own  # for admins only
