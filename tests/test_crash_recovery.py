"""SIGKILL during a burst of submissions loses no acknowledged job."""

import re
import threading
import time
import urllib.parse

from conftest import exit_code, https_connection, post

UNFIT = "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n"
RUNNABLE = "::EXECUTE::\necho burst\n"


def submitter(app, token, acknowledged, stop, errors):
    conn = https_connection(app)
    n = 0
    try:
        while not stop.is_set():
            text = RUNNABLE if n % 5 == 0 else UNFIT
            body = "output_format=txt&mrsltextarea_0=" + urllib.parse.quote(text)
            n += 1
            try:
                status, reply = post(conn, "/cgi-bin/textarea.py", body, token)
            except OSError:
                return  # the server died mid-request: that submission was not acknowledged
            if status == 200 and exit_code(reply) == 0:
                acknowledged.append(re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1))
            else:
                errors.append(reply)
    finally:
        conn.close()


def test_sigkill_during_burst_loses_no_acknowledged_job(appliance_factory):
    app = appliance_factory()
    alice = app.add_user("alice")
    app.start()
    acknowledged, errors, stop = [], [], threading.Event()
    threads = [threading.Thread(target=submitter, args=(app, alice["token"], acknowledged, stop, errors))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 20
    while len(acknowledged) < 300 and time.time() < deadline:
        time.sleep(0.05)
    app.kill()  # SIGKILL while the submitters are still sending
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors[:3]
    assert len(acknowledged) >= 300

    started = time.time()
    app.start()
    conn = https_connection(app)
    status, reply = post(conn, "/cgi-bin/jobstatus.py", "output_format=txt", alice["token"])
    restart_seconds = time.time() - started
    conn.close()
    assert status == 200 and exit_code(reply) == 0
    present = set(re.findall(r"^Job Id: (\S+)$", reply, re.M))
    lost = [j for j in acknowledged if j not in present]
    assert not lost, "%d acknowledged jobs lost, e.g. %s" % (len(lost), lost[:3])
    assert len(set(acknowledged)) == len(acknowledged), "duplicate job ids handed out"
    assert restart_seconds < 5
