"""Password login, the session cookie, the rate limit and logout."""

import urllib.parse

import pytest

from conftest import https_connection, portal_login


def form(conn, path, fields, cookie=None, agent="Mozilla/5.0 test"):
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": agent}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("POST", path, body=urllib.parse.urlencode(fields), headers=headers)
    resp = conn.getresponse()
    return resp, resp.read().decode()


def get(conn, path, cookie=None):
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    resp = conn.getresponse()
    return resp, resp.read().decode()


@pytest.fixture
def app(portal):
    return portal


def test_login_sets_a_strict_cookie_and_logout_needs_the_token(app):
    conn = https_connection(app)
    resp, page = get(conn, "/cgi-bin/dashboard.py")
    assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
    resp, page = get(conn, "/login")
    assert "admin-credentials.txt" in page  # a fresh appliance says how to log in
    resp, _, session = portal_login(conn, "alice", "first-password", "https://evil.example/")
    assert resp.status == 303 and resp.headers["Location"] == "/cgi-bin/dashboard.py"
    cookie = resp.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    resp, page = get(conn, "/cgi-bin/dashboard.py", session)
    assert resp.status == 200 and "Welcome, alice." in page
    resp, _ = form(conn, "/logout", {}, session)
    assert resp.status == 403  # no CSRF token: the session stays
    resp, page = get(conn, "/cgi-bin/dashboard.py", session)
    assert resp.status == 200
    token = page.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
    resp, _ = form(conn, "/logout", {"_csrf": token}, session)
    assert resp.status == 303 and "Max-Age=0" in resp.headers["Set-Cookie"]
    resp, _ = get(conn, "/cgi-bin/dashboard.py", session)
    assert resp.status == 303  # the session is gone


def test_failed_logins_are_rate_limited(app):
    """Three quick failures, then this address waits (more in tests/security)."""
    conn = https_connection(app)
    for _ in range(3):
        resp, page, _session = portal_login(conn, "alice", "nope")
        assert resp.status == 401 and "Wrong user name or password." in page
    # The wait doubles with every failure: on a slow machine an attempt may
    # come after the first wait, so guess on until the address must wait.
    for _ in range(4):
        resp, page, _session = portal_login(conn, "alice", "nope")
        if resp.status == 429:
            break
        assert resp.status == 401
    assert resp.status == 429 and "Too many failed attempts" in page
    resp, page, _session = portal_login(conn, "alice", "first-password")
    assert resp.status == 429 and "Too many failed attempts" in page
    assert int(resp.headers["Retry-After"]) >= 1


def test_a_grid_certificate_logs_in_by_itself(app):
    user = {"cert": "%s/users/alice/user.crt" % app.state, "key": "%s/users/alice/user.key" % app.state}
    conn = https_connection(app, user)
    resp, _ = get(conn, "/login")
    assert resp.status == 303 and resp.headers["Location"] == "/cgi-bin/dashboard.py"
    resp, page = get(conn, "/cgi-bin/dashboard.py")
    assert resp.status == 200 and "Welcome, alice." in page
