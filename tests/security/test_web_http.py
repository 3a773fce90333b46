"""Security of the HTTP layer, through the real server: strangers cannot make
the server read or hold big bodies, uploads are streamed, connection and
request-head limits, unambiguous request lengths, AEAD-only TLS 1.2, the
CSP and Cache-Control headers, and a page that used to answer 500."""

import hashlib
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse

import pytest

from conftest import exit_code, https_connection, set_config, wait_for

BIG = 64 * 1024 * 1024


def host_port(app):
    parts = urllib.parse.urlsplit(app.url)
    return parts.hostname, parts.port


def raw_tls(app, timeout=10, context=None):
    """A TLS socket to the appliance (no client certificate), handshake done."""
    ctx = context or ssl.create_default_context(cafile=app.ca)
    raw = socket.create_connection(host_port(app), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def read_reply(tls):
    """Everything the server sends until it closes the connection (or goes quiet)."""
    data = b""
    while True:
        try:
            chunk = tls.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            return data, True  # closed (without a TLS goodbye)
        except (socket.timeout, ssl.SSLError, ConnectionError):
            return data, False
        if not chunk:
            return data, True
        data += chunk


def head(status_line, headers, length):
    lines = [status_line, "Host: localhost", "User-Agent: python-test"] + headers
    lines.append("Content-Length: %d" % length)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def part(name, value=None, filename=None):
    disposition = 'form-data; name="%s"' % name
    if filename is not None:
        disposition += '; filename="%s"' % filename
    return ("--BOUNDARY\r\nContent-Disposition: %s\r\n\r\n%s" % (
        disposition, "" if value is None else value + "\r\n")).encode()


@pytest.fixture
def grid(alice_grid):
    return alice_grid


def rss_anon_kb(pid):
    with open("/proc/%d/status" % pid) as handle:
        return int(re.search(r"^RssAnon:\s+(\d+) kB", handle.read(), re.M).group(1))


# -- 1. bodies: strangers are refused before the body is read; uploads are streamed ------
MULTIPART = "Content-Type: multipart/form-data; boundary=BOUNDARY"


@pytest.mark.parametrize("target,headers,first", [
    # share link in the multipart body, before the file part: checked before the file
    ("POST /cgi-bin/uploadchunked.py HTTP/1.1", [MULTIPART],
     part("share_id", "bogusbogus1") + part("output_format", "txt") + part("action", "put")
     + part("files[]", filename="big.bin")),
    # share link in the query: checked before anything is read
    ("POST /cgi-bin/uploadchunked.py?share_id=bogusbogus1&output_format=txt HTTP/1.1",
     [MULTIPART], b""),
    # no link at all, the file part first
    ("POST /cgi-bin/uploadchunked.py?output_format=txt HTTP/1.1", [MULTIPART],
     part("files[]", filename="big.bin")),
    # a made-up token is no credential: it must not buy a big read either
    ("POST /cgi-bin/upload.py?output_format=txt HTTP/1.1",
     [MULTIPART, "Authorization: Bearer not-a-token"], part("files", filename="big.bin")),
    ("SHAREPUT /share_redirect/bogusbogus1/big.bin HTTP/1.1", [], b""),
])
def test_strangers_are_answered_before_they_send_a_big_body(grid, target, headers, first):
    """The reply (a refusal) and the close come while most of the 64 MiB is unsent:
    the server decided without reading the body."""
    app, _alice = grid
    tls = raw_tls(app, timeout=10)
    with tls:
        started = time.monotonic()
        try:
            tls.sendall(head(target, headers, BIG) + first + b"x" * (256 * 1024))
        except (ssl.SSLError, OSError):
            pass  # the server answered and closed before all of this was sent: so much the better
        reply, closed = read_reply(tls)
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    assert closed and time.monotonic() - started < 8
    status = int(reply.split()[1])
    text = reply.decode("latin-1")
    if status == 200:  # a MiG reply: an error exit code about the link
        body = text.split("\r\n\r\n", 1)[1]
        assert exit_code(body) != 0, body
    else:
        assert status in (401, 404), text[:300]


def test_strangers_do_not_grow_the_server(grid):
    """Several anonymous 64 MiB uploads sent in full to a bogus link leave the
    server's memory (RssAnon) as it was."""
    app, _alice = grid
    before = rss_anon_kb(app.proc.pid)
    body = part("share_id", "bogusbogus1") + part("action", "put") + \
        part("files[]", filename="big.bin") + b"x" * (BIG - 1024) + b"\r\n--BOUNDARY--\r\n"

    def send():
        try:
            with raw_tls(app, timeout=20) as tls:
                tls.sendall(head("POST /cgi-bin/uploadchunked.py HTTP/1.1", [MULTIPART],
                                 len(body)) + body)
                read_reply(tls)
        except (OSError, ssl.SSLError):
            pass  # the server closed while the client was still sending: fine
    threads = [threading.Thread(target=send) for _ in range(4)]
    peak = before
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_anon_kb(app.proc.pid))
        time.sleep(0.01)
    assert peak - before < 16 * 1024, (before, peak)


def test_uploads_are_streamed_not_held_in_memory(grid):
    """A 48 MiB multipart upload by a user arrives intact while the server's
    anonymous memory grows by far less than the file."""
    app, alice = grid
    data = os.urandom(1024 * 1024) * 48
    body = part("output_format", "txt") + part("files", filename="big.bin") + data + \
        b"\r\n--BOUNDARY--\r\n"
    before = rss_anon_kb(app.proc.pid)
    peak, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_kb(app.proc.pid))
            time.sleep(0.01)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for _ in range(2):
            conn = https_connection(app, timeout=60)
            conn.request("POST", "/cgi-bin/upload.py", body=body, headers={
                "Content-Type": "multipart/form-data; boundary=BOUNDARY",
                "Authorization": "Bearer " + alice["token"], "User-Agent": "python-test"})
            reply = conn.getresponse().read().decode()
            conn.close()
            assert exit_code(reply) == 0, reply
    finally:
        done.set()
        sampler.join()
    with open(os.path.join(alice["home"], "big.bin"), "rb") as handle:
        assert hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest()
    assert peak[0] - before < 24 * 1024, (before, peak[0])


def test_a_valid_share_link_still_takes_a_big_chunk(grid):
    """The other side of the checks: a stranger with a write link uploads a 3 MiB
    chunk (spooled, past the in-memory part) and it arrives intact."""
    app, alice = grid
    os.makedirs(os.path.join(alice["home"], "drop"))
    conn = https_connection(app)
    conn.request("POST", "/cgi-bin/sharelink.py", body="output_format=txt&action=create&"
                 "path=drop&write_access=true", headers={
                     "Authorization": "Bearer " + alice["token"], "User-Agent": "python-test",
                     "Content-Type": "application/x-www-form-urlencoded"})
    reply = conn.getresponse().read().decode()
    share_id = re.search(r"/share_redirect/(\S+)/", reply).group(1)
    data = os.urandom(3 * 1024 * 1024 + 17)
    body = part("share_id", share_id) + part("output_format", "txt") + \
        part("action", "put") + part("files[]", filename="chunk.bin") + data + \
        b"\r\n--BOUNDARY--\r\n"
    conn.request("POST", "/cgi-bin/uploadchunked.py", body=body, headers={
        "Content-Type": "multipart/form-data; boundary=BOUNDARY", "User-Agent": "python-test"})
    reply = conn.getresponse().read().decode()
    conn.close()
    assert exit_code(reply) == 0, reply
    with open(os.path.join(alice["home"], "drop", ".upload-cache", "chunk.bin"), "rb") as handle:
        assert handle.read() == data


# -- 2. connection cap and request-head deadline -------------------------------------------
def test_connections_beyond_the_cap_are_closed(appliance_factory):
    app = appliance_factory()
    app.cli("user", "list")
    set_config(app.state, max_connections=3)
    app.start()
    held = [raw_tls(app) for _ in range(3)]
    try:
        with pytest.raises((OSError, ssl.SSLError)):
            extra = raw_tls(app, timeout=5)
            extra.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = extra.recv(100)
            extra.close()
            if not reply:
                raise ConnectionError("closed")
        held.pop().close()

        def served():
            try:
                with raw_tls(app, timeout=5) as tls:
                    tls.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    return tls.recv(100).startswith(b"HTTP/1.1 200")
            except (OSError, ssl.SSLError):
                return False
        wait_for(served, timeout=10, what="a connection once one was closed")
    finally:
        for tls in held:
            tls.close()


def test_a_request_head_sent_byte_by_byte_is_cut_off(appliance_factory):
    """Each byte comes well within the idle timeout, but the head as a whole must
    arrive within request_head_timeout (2 s here)."""
    app = appliance_factory()
    app.cli("user", "list")
    set_config(app.state, request_head_timeout=2)
    app.start()
    with raw_tls(app) as tls:
        tls.sendall(b"GET /login HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        started = time.monotonic()
        tls.settimeout(0.3)
        closed = False
        while time.monotonic() - started < 10 and not closed:
            try:
                tls.sendall(b"a")
                closed = tls.recv(4096) == b""  # a 408/close, or just the close
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                closed = True
        assert closed, "the slow request head was not cut off within 10 s"
        assert time.monotonic() - started < 6


# -- 3. request lengths must be unambiguous ------------------------------------------------
@pytest.mark.parametrize("extra,status", [
    (["Content-Length: 5", "Content-Length: 50"], 400),
    (["Content-Length: 5", "Content-Length: 5"], 400),
    (["Content-Length: -5"], 400),
    (["Content-Length: 5abc"], 400),
    (["Transfer-Encoding: chunked"], 501),
    (["Transfer-Encoding: chunked", "Content-Length: 5"], 501),
])
def test_ambiguous_lengths_are_refused_and_the_connection_closed(grid, extra, status):
    app, alice = grid
    with raw_tls(app) as tls:
        lines = ["POST /cgi-bin/ls.py HTTP/1.1", "Host: localhost", "User-Agent: python-test",
                 "Authorization: Bearer " + alice["token"],
                 "Content-Type: application/x-www-form-urlencoded"] + extra
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b"5\r\nGET /login HTTP/1.1\r\n"
                    b"Host: localhost\r\n\r\n")
        reply, closed = read_reply(tls)
    assert reply.startswith(b"HTTP/1.1 %d" % status), reply[:200]
    header, _sep, rest = reply.partition(b"\r\n\r\n")
    length = int(re.search(rb"\r\nContent-Length: (\d+)", header).group(1))
    assert closed and len(rest) == length, reply  # one reply: nothing smuggled after it


# -- 4. TLS 1.2 offers AEAD suites only ------------------------------------------------------
def tls12_context(app, ciphers):
    ctx = ssl.create_default_context(cafile=app.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    return ctx


@pytest.mark.parametrize("cipher", ["ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES128-SHA256",
                                    "ECDHE-RSA-AES256-SHA384", "AES128-SHA256"])
def test_tls12_cbc_suites_are_refused(grid, cipher):
    app, _alice = grid
    with pytest.raises(ssl.SSLError):
        raw_tls(app, context=tls12_context(app, cipher)).close()


def test_tls12_aead_and_tls13_work(grid):
    app, _alice = grid
    with raw_tls(app, context=tls12_context(app, "ECDHE-RSA-AES128-GCM-SHA256")) as tls:
        assert tls.version() == "TLSv1.2" and "GCM" in tls.cipher()[0]
    with raw_tls(app) as tls:
        assert tls.version() == "TLSv1.3"


# -- 5. and 6. headers: CSP and no caching of private replies ---------------------------
def test_csp_restricts_base_forms_and_plugins(grid):
    app, _alice = grid
    conn = https_connection(app)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    resp.read()
    csp = [d.strip() for d in resp.getheader("Content-Security-Policy").split(";")]
    assert "base-uri 'none'" in csp and "form-action 'self'" in csp
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp


def test_authenticated_replies_are_not_stored(grid):
    app, alice = grid
    with open(os.path.join(alice["home"], "notes.txt"), "w") as handle:
        handle.write("private")
    token = {"Authorization": "Bearer " + alice["token"], "User-Agent": "python-test"}
    checks = [("GET", "/cgi-bin/dashboard.py", None, token),
              ("GET", "/cgi-bin/download.py?what=key", None, token),
              ("POST", "/cgi-bin/newtoken.py", "output_format=txt",
               dict(token, **{"Content-Type": "application/x-www-form-urlencoded"})),
              ("GET", "/cert_redirect/notes.txt", None, token),
              ("GET", "/api/ls", None, token)]
    for method, path, body, headers in checks:
        conn = https_connection(app, alice)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        assert resp.status == 200, (path, data[:200])
        assert resp.getheader("Cache-Control") == "no-store", path


# -- 7. jobtail answers as a MiG page, not HTTP 500 -----------------------------------------
def test_jobtail_answers_without_500(grid):
    app, alice = grid
    reply = app.backend(alice, "textarea", [("mrsltextarea_0", "::EXECUTE::\necho tail\n")])
    job_id = re.search(r"(\S+_\S+)\s*$", reply.strip().splitlines()[-1]).group(1)
    conn = https_connection(app, alice)
    for query in ("", "?job_id=" + job_id, "?job_id=%s&output_format=json" % job_id,
                  "?output_format=txt"):
        conn.request("GET", "/cgi-bin/jobtail.py" + query, headers={"User-Agent": "python"})
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200, (query, text[:300])
        if query.endswith("txt"):
            assert exit_code(text) == 102 and "job_id" in text
        elif query.endswith("json"):
            assert '"object_type": "tail"' in text
        else:
            assert "<html" in text
