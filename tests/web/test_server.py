"""The HTTPS server and dispatcher against a real appliance process."""

import socket
import ssl
import subprocess
import time
import urllib.parse
import warnings

import pytest

from conftest import exit_code, https_connection, post


@pytest.fixture
def grid(alice_grid):
    return alice_grid


def host_port(app):
    parts = urllib.parse.urlsplit(app.url)
    return parts.hostname, parts.port


def test_idle_client_does_not_block_others(grid):
    app, alice = grid
    idle = socket.create_connection(host_port(app))  # never says hello
    try:
        conn = https_connection(app, timeout=5)
        start = time.time()
        status, reply = post(conn, "/cgi-bin/jobstatus.py", "output_format=txt", alice["token"])
        assert status == 200 and time.time() - start < 2
        conn.close()
    finally:
        idle.close()


def _old_tls_client(maximum):
    """A client willing to speak old TLS, so that only the server can refuse."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maximum
    return ctx


def test_tls_below_1_2_is_refused(grid):
    app, _ = grid
    with socket.create_connection(host_port(app)) as raw:
        with _old_tls_client(ssl.TLSVersion.TLSv1_2).wrap_socket(raw) as tls:
            assert tls.version() == "TLSv1.2"  # the same client gets in with 1.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(host_port(app)) as raw:
        with pytest.raises(ssl.SSLError) as refused:
            _old_tls_client(old).wrap_socket(raw)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)


def test_unauthenticated_requests_are_refused_clearly(grid):
    app, _ = grid
    conn = https_connection(app)
    status, reply = post(conn, "/cgi-bin/jobstatus.py", "output_format=txt")
    assert status == 401 and exit_code(reply) == 104
    assert "client certificate" in reply and "Bearer" in reply
    status, reply = post(conn, "/cgi-bin/jobstatus.py", "output_format=txt", token="mig_wrong")
    assert status == 401 and "not valid" in reply
    conn.request("GET", "/cert_redirect/x.txt")
    resp = conn.getresponse()
    assert resp.status == 401 and b"authentication required" in resp.read()


def test_foreign_certificate_is_rejected(grid, tmp_path):
    app, _ = grid
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "k"), "-out", str(tmp_path / "c"), "-days", "2", "-subj",
                    "/CN=mallory"], check=True, capture_output=True)
    user = {"cert": str(tmp_path / "c"), "key": str(tmp_path / "k")}
    conn = https_connection(app, user)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        post(conn, "/cgi-bin/jobstatus.py", "output_format=txt")


def test_keep_alive_and_mig_form_rules(grid):
    app, alice = grid
    conn = https_connection(app, alice)
    # ';' separates like '&', blank fields count as absent (flags= on a backend without flags)
    for _ in range(3):
        status, reply = post(conn, "/cgi-bin/mkdir.py",
                             "_=certauth;output_format=txt&flags=p&path=d1&current_dir=")
        assert status == 200 and exit_code(reply) == 0, reply
    status, reply = post(conn, "/wsgi-bin/ls.py", "_=certauth;output_format=txt&flags=&path=.")
    assert exit_code(reply) == 0 and "\nd1\n" in reply
    lines = reply.splitlines()
    assert lines[1] == "Title: User Files" and lines[2] == "" and lines[3].startswith("___")
    status, reply = post(conn, "/cgi-bin/ls.py", "output_format=txt&bogus=1")
    assert exit_code(reply) == 102 and "unexpected field: bogus" in reply
    status, reply = post(conn, "/cgi-bin/nosuch.py", "output_format=txt")
    assert exit_code(reply) == 100 and "no such operation" in reply
    conn.close()


def test_state_changes_need_post_and_browsers_need_csrf(grid):
    app, alice = grid
    conn = https_connection(app, alice)
    conn.request("GET", "/cgi-bin/mkdir.py?output_format=txt&path=viaget")
    resp = conn.getresponse()
    reply = resp.read().decode()
    assert exit_code(reply) == 100 and "use POST" in reply
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Origin": "https://evil.example", "User-Agent": "Mozilla/5.0"}
    conn.request("POST", "/cgi-bin/mkdir.py", body="output_format=txt&path=csrf", headers=headers)
    reply = conn.getresponse().read().decode()
    assert exit_code(reply) == 104 and "CSRF" in reply
    status, reply = post(conn, "/cgi-bin/ls.py", "output_format=txt")
    assert "viaget" not in reply and "csrf" not in reply


def test_api_json_and_html_formats(grid):
    app, alice = grid
    import json
    conn = https_connection(app)
    headers = {"Authorization": "Bearer " + alice["token"], "Content-Type": "application/json"}
    conn.request("POST", "/api/textarea", body=json.dumps(
        {"mrsltextarea_0": json.dumps({"EXECUTE": ["echo <b>hi</b>"], "JOBNAME": "x"})}),
        headers=headers)
    resp = conn.getresponse()
    data = json.loads(resp.read())
    assert resp.status == 200 and data[0]["exit_code"] == 0, data
    table = [o for o in data if o["object_type"] == "table"][0]
    job_id = table["rows"][0][2]
    conn.request("GET", "/cgi-bin/mrslview.py?job_id=%s" % job_id, headers=headers)
    resp = conn.getresponse()
    page = resp.read().decode()
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "&lt;b&gt;hi&lt;/b&gt;" in page and "<b>hi</b>" not in page
    for header in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
                   "X-Frame-Options"):
        assert resp.headers[header]


def test_put_edge_cases(grid):
    app, alice = grid
    conn = https_connection(app, alice)
    conn.request("CERTPUT", "/cert_redirect/missing/dir/f.txt", body=b"x",
                 headers={"User-Agent": "curl/8"})
    reply = conn.getresponse().read().decode()
    assert reply.startswith("1\n") and "invalid directory" in reply
    conn.request("PUT", "/cert_redirect/../../escape.txt", body=b"x", headers={"User-Agent": "curl/8"})
    reply = conn.getresponse().read().decode()
    assert reply.startswith("0\n")  # normalised into the home
    status, listing = post(conn, "/cgi-bin/ls.py", "output_format=txt&path=escape.txt")
    assert exit_code(listing) == 0
    conn.request("PUT", "/cert_redirect/bad.mRSL", body=b"::EXECUTE::\n",
                 headers={"User-Agent": "curl/8", "Content-Type": "submitmrsl"})
    reply = conn.getresponse().read().decode()
    assert reply.startswith("1\n") and "EXECUTE is required" in reply


def test_textarea_takes_many_numbered_jobs_in_one_request(grid):
    app, alice = grid
    conn = https_connection(app, alice)
    fields = [("output_format", "txt")] + [("mrsltextarea_%d" % i, "::EXECUTE::\necho %d\n" % i)
                                           for i in range(12)]
    fields.append(("mrsltextarea_12", "::EXECUTE::\n"))  # a bad one among them
    status, reply = post(conn, "/cgi-bin/textarea.py", urllib.parse.urlencode(fields))
    rows = [line.split() for line in reply.splitlines() if line.startswith("textarea")]
    assert [r[1] for r in rows] == ["1"] * 12 + ["0"]
    assert exit_code(reply) == 100 and "EXECUTE is required" in reply
    assert len({r[2] for r in rows[:12]}) == 12
    too_many = [("mrsltextarea_%d" % i, "::EXECUTE::\ntrue\n") for i in range(1001)]
    status, reply = post(conn, "/cgi-bin/textarea.py",
                         urllib.parse.urlencode([("output_format", "txt")] + too_many))
    assert exit_code(reply) == 100 and "at most 1000 jobs per request" in reply


def test_expect_100_continue_is_answered_at_once(grid):
    """curl sends 'Expect: 100-continue' with uploads and waits up to 1 s for it."""
    app, alice = grid
    ctx = ssl.create_default_context(cafile=app.ca)
    ctx.load_cert_chain(alice["cert"], alice["key"])
    with socket.create_connection(host_port(app), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            body = b"x" * 5000
            tls.sendall(b"CERTPUT /cert_redirect/expect.bin HTTP/1.1\r\nHost: localhost\r\n"
                        b"User-Agent: curl/8\r\nContent-Length: %d\r\n"
                        b"Expect: 100-continue\r\n\r\n" % len(body))
            tls.settimeout(0.5)
            first = tls.recv(64)
            assert first.startswith(b"HTTP/1.1 100"), first
            tls.settimeout(5)
            tls.sendall(body)
            reply = b""
            while b"\r\n\r\n0\n" not in reply and b"uploaded" not in reply:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                reply += chunk
            assert b"uploaded" in reply


def test_strangers_cannot_make_the_server_read_big_bodies(grid):
    app, _ = grid
    raw = socket.create_connection(host_port(app), timeout=5)
    ctx = ssl.create_default_context(cafile=app.ca)
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        # claims 200 MB but sends only the headers: refused at once, nothing read
        tls.sendall(b"POST /cgi-bin/mkdir.py HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 200000000\r\n\r\n")
        reply = tls.recv(4096)
        assert reply.startswith(b"HTTP/1.1 401")
