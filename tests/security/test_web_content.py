"""Security of what users put into the appliance, through the real server:
user regexes run outside the server (grep, VERIFYFILES), download names in
Content-Disposition, and the resource monitor's job ids."""

import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from conftest import ROOT, exit_code, https_connection, post_backend, set_config, wait_for
from conftest import write_home_file

EVIL = r"(a+)+$"
EVIL_LINE = "a" * 31 + "!"


# -- 1. user regexes ------------------------------------------------------------------------
def test_a_catastrophic_grep_pattern_fails_fast_and_the_server_keeps_answering(appliance):
    """grep runs the pattern in a helper with a deadline: an error within seconds,
    while ls from another connection answers at once meanwhile."""
    alice = appliance.add_user("alice")
    write_home_file(alice, "evil.txt", (EVIL_LINE + "\n") * 5)
    write_home_file(alice, "plain.txt", "hello\nworld\nhello again\n")
    result = {}

    def slow_grep():
        conn = https_connection(appliance, alice, timeout=20)
        started = time.monotonic()
        try:
            conn.request("POST", "/cgi-bin/grep.py", body=urllib.parse.urlencode(
                [("path", "evil.txt"), ("pattern", EVIL), ("output_format", "txt")]),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
            result["reply"] = conn.getresponse().read().decode()
        except Exception as exc:  # a frozen server times out here
            result["reply"] = "no reply: %r" % exc
        finally:
            result["seconds"] = time.monotonic() - started
            conn.close()

    grep = threading.Thread(target=slow_grep)
    grep.start()
    time.sleep(0.3)  # the pattern is running now
    latencies = []
    while grep.is_alive() and len(latencies) < 20:
        started = time.monotonic()
        reply = post_backend(appliance, alice, "ls", [("path", ".")])
        latencies.append(time.monotonic() - started)
        assert exit_code(reply) == 0 and "plain.txt" in reply, reply
        time.sleep(0.05)
    grep.join(30)
    assert latencies and max(latencies) < 1.0, latencies
    assert result["seconds"] < 6, result
    assert exit_code(result["reply"]) != 0, result["reply"]
    assert "the pattern took too long" in result["reply"], result["reply"]
    # the killed helper is replaced: normal greps still work, and fast
    started = time.monotonic()
    reply = post_backend(appliance, alice, "grep", [("path", "plain.txt"), ("pattern", "^hel+o")])
    assert exit_code(reply) == 0 and "hello again" in reply and "world" not in reply, reply
    assert time.monotonic() - started < 1.0
    reply = post_backend(appliance, alice, "grep", [("path", "plain.txt"), ("pattern", "x" * 1001)])
    assert exit_code(reply) != 0 and "at most 1000" in reply, reply


VERIFY_SCRIPT = r"""
import sys, threading, time
sys.path.insert(0, sys.argv[1])
from mig.core.home import Home
from mig.core.verify import verify_results
ticks = []
stop = threading.Event()
def tick():
    while not stop.is_set():
        ticks.append(time.monotonic())
        time.sleep(0.02)
threading.Thread(target=tick, daemon=True).start()
time.sleep(0.1)
started = time.monotonic()
verdict = verify_results(Home(sys.argv[2]), "job1", {"VERIFYFILES": ["check.stdout"]})
took = time.monotonic() - started
stop.set()
gaps = [b - a for a, b in zip(ticks, ticks[1:])]
print(repr((verdict, took, max(gaps))))
"""


def test_a_catastrophic_verifyfiles_pattern_fails_the_verification_with_a_reason(tmp_path):
    """VERIFYFILES patterns run in the same helpers: the verification fails with a
    reason within seconds, and other threads of the process keep running (the
    GIL is free).  Run in a child process so the old code fails by timeout."""
    home = tmp_path / "home"
    (home / "job_output" / "job1").mkdir(parents=True)
    (home / "check.stdout").write_text("hello.*\n%s\n" % EVIL)
    (home / "job_output" / "job1" / "job1.stdout").write_text("hello world\n%s\n" % EVIL_LINE)
    try:
        done = subprocess.run([sys.executable, "-c", VERIFY_SCRIPT, ROOT, str(home)],
                              capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("verification of a catastrophic pattern did not end")
    assert done.returncode == 0, done.stderr
    verdict, took, gap = eval(done.stdout.strip())  # our own child's repr of a tuple
    assert verdict.startswith("FAILURE") and "the pattern took too long" in verdict, verdict
    assert took < 6, took
    assert gap < 0.5, gap
    # a good template still verifies
    (home / "check.stdout").write_text("hello.*\na+!\n")
    done = subprocess.run([sys.executable, "-c", VERIFY_SCRIPT, ROOT, str(home)],
                          capture_output=True, text=True, timeout=20)
    assert eval(done.stdout.strip())[0] == "SUCCESS - stdout: OK", done.stdout


def test_a_job_with_a_catastrophic_verifyfiles_pattern_is_verified_as_failed(appliance):
    """The same through a real job: it ends, its verification fails with the reason,
    and the server answers other requests quickly all along."""
    alice = appliance.add_user("alice")
    write_home_file(alice, "check.stdout", EVIL + "\n")
    reply = post_backend(appliance, alice, "textarea", [(
        "mrsltextarea_0", "::EXECUTE::\necho %s\n\n::VERIFYFILES::\ncheck.stdout\n" % EVIL_LINE)])
    assert exit_code(reply) == 0, reply
    job_id = re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)
    latencies, status = [], ""
    deadline = time.monotonic() + 60
    while "Verified:" not in status and time.monotonic() < deadline:
        started = time.monotonic()
        status = post_backend(appliance, alice, "jobstatus", [("job_id", job_id)])
        latencies.append(time.monotonic() - started)
        time.sleep(0.1)
    assert "Verified: FAILURE" in status and "the pattern took too long" in status, status
    assert max(latencies) < 1.0, latencies


# -- 2. Content-Disposition -----------------------------------------------------------------
def raw_get(app, user, path):
    """(status line, [header lines], body) of a GET, read off the socket as it came."""
    from urllib.parse import urlsplit
    ctx = ssl.create_default_context(cafile=app.ca)
    ctx.load_cert_chain(user["cert"], user["key"])
    parts = urlsplit(app.url)
    import socket
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname=parts.hostname) as sock:
            sock.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                          % path).encode("ascii"))
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], lines[1:], body


@pytest.mark.parametrize("name", ['quote"semi;colon\r\nSet-Cookie: x=1.txt',
                                  "ñandú — 数据.txt",
                                  'all "of it"; ñ\n数据\x01.txt'])
def test_download_names_are_encoded_in_content_disposition(appliance, name):
    alice = appliance.add_user("alice")
    write_home_file(alice, name, b"the data")
    status, headers, body = raw_get(appliance, alice, "/cgi-bin/rangefileaccess.py?" +
                                    urllib.parse.urlencode({"path": name}))
    assert status.split()[1] == "200", (status, headers)
    assert body == b"the data"
    for line in headers:  # every header line is one 'Name: value' without controls
        assert re.fullmatch(r"[A-Za-z0-9-]+: [\x20-\x7e]*", line), headers
    assert not any(h.lower().startswith("set-cookie") for h in headers), headers
    found = [h for h in headers if h.lower().startswith("content-disposition:")]
    assert len(found) == 1, headers
    value = found[0].split(": ", 1)[1]
    match = re.fullmatch(r'attachment; filename="([^"\\]*)"; filename\*=UTF-8\'\'([^;\s]+)',
                         value)
    assert match, value
    assert urllib.parse.unquote(match.group(2), encoding="utf-8", errors="strict") == name


def test_the_ascii_fallback_drops_quotes_backslashes_and_controls():
    """Backslashes cannot reach a home file name (they are folder separators
    there), so the helper itself is checked for them."""
    from mig.web.disposition import attachment
    value = attachment('a\\b"c\r\nd\x7f\x00é.txt')
    assert value == "attachment; filename=\"abcd_.txt\"; " \
                    "filename*=UTF-8''a%5Cb%22c%0D%0Ad%7F%00%C3%A9.txt"
    assert attachment("\n\"") == "attachment; filename=\"download\"; filename*=UTF-8''%0A%22"


# -- 3. the resource monitor -------------------------------------------------------------
def submit(app, user, seconds):
    reply = post_backend(app, user, "textarea", [
        ("mrsltextarea_0", "::EXECUTE::\nsleep %d\n\n::CPUTIME::\n600\n" % seconds)])
    assert exit_code(reply) == 0, reply
    return re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)


def monitor_views(app, user):
    """The Jobs column of the monitor, as txt, html and JSON."""
    txt = post_backend(app, user, "monitor", [])
    assert exit_code(txt) == 0, txt
    html = app.curl(user, "URL/cgi-bin/monitor.py")
    objects = json.loads(app.curl(user, "URL/api/monitor"))
    rows = [o for o in objects if o.get("kind") == "monitor"][0]["rows"]
    return {"txt": txt, "html": html, "json": " ".join(str(r[-1]) for r in rows)}


def test_the_monitor_shows_only_your_own_job_ids(appliance_factory):
    app = appliance_factory()
    alice, bob = app.add_user("alice"), app.add_user("bob")
    set_config(app.state, local_slots="4", scheduler_tick="0.5")
    app.start()
    with open(os.path.join(app.state, "admin-credentials.json")) as handle:
        admin = json.load(handle)
    mine, theirs = submit(app, alice, 60), submit(app, bob, 60)
    wait_for(lambda: all(j in monitor_views(app, admin)["json"] for j in (mine, theirs)),
             30, 0.3, "both jobs running")
    for fmt, view in monitor_views(app, alice).items():
        assert mine in view, (fmt, view)
        assert theirs not in view, (fmt, view)
        assert "1 job of other users" in view, (fmt, view)
    for fmt, view in monitor_views(app, bob).items():
        assert theirs in view and mine not in view, (fmt, view)
        assert "1 job of other users" in view, (fmt, view)
    for fmt, view in monitor_views(app, admin).items():
        assert mine in view and theirs in view, (fmt, view)
        assert "of other users" not in view, (fmt, view)
    for user, job in ((alice, mine), (bob, theirs)):
        post_backend(app, user, "canceljob", [("job_id", job)])
