"""Login and session hardening: password changes end other sessions, `next`
cannot leave the site, guessing slows the source (not the account) and does
not tell which names exist, and the login form carries a pre-session CSRF
token.  Other loopback addresses (127.0.0.2, ...) stand for other clients."""

import re
import statistics
import time
import urllib.parse

import pytest

from conftest import https_connection, portal_login
from mig.web.sessions import safe_next
from mig.web.sessions import LoginThrottle, source_key

BROWSER = "Mozilla/5.0 test"
DASHBOARD = "/cgi-bin/dashboard.py"


def request(conn, method, path, fields=None, cookie=None, agent=BROWSER):
    headers = {"User-Agent": agent}
    if cookie:
        headers["Cookie"] = cookie
    body = None
    if fields is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(fields)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode("utf-8", "replace")
    location = resp.getheader("Location") or ""
    if method == "POST" and resp.status == 303 and "?result=" in location:
        return request(conn, "GET", location, cookie=cookie, agent=agent)  # as a browser does
    return resp, text


def csrf_of(page):
    return page.split('name="_csrf" value="', 1)[1].split('"', 1)[0]


def logged_in(conn, session):
    resp, page = request(conn, "GET", DASHBOARD, cookie=session)
    return resp.status == 200 and "Welcome, alice." in page


# -- 1. a password change ends the user's other sessions ---------------------------

def token_works(app, token):
    conn = https_connection(app)
    conn.request("GET", "/cgi-bin/ls.py?output_format=txt",
                 headers={"Authorization": "Bearer " + token, "User-Agent": "python-test"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status == 200


def change_password(conn, session, current, new, **extra):
    _resp, page = request(conn, "GET", "/cgi-bin/settings.py", cookie=session)
    fields = dict({"_csrf": csrf_of(page), "current": current, "password": new,
                   "repeat": new}, **extra)
    return request(conn, "POST", "/cgi-bin/changepassword.py", fields, session)


def test_password_change_ends_other_sessions_and_can_revoke_tokens(portal):
    here, there = https_connection(portal), https_connection(portal, source="127.0.0.2")
    session = portal_login(here, "alice", "first-password")[2]
    other = portal_login(there, "alice", "first-password")[2]
    _resp, page = request(here, "GET", "/cgi-bin/settings.py", cookie=session)
    assert 'name="revoke_tokens"' in page  # the option is on the form
    _resp, page = request(here, "POST", "/cgi-bin/newtoken.py",
                          {"_csrf": csrf_of(page), "label": "script"}, session)
    token = re.search(r"mig_[A-Za-z0-9_-]{43}", page).group(0)
    assert token_works(portal, token) and logged_in(there, other)

    resp, page = change_password(here, session, "first-password", "second-password")
    assert resp.status == 200 and "Your password was changed." in page
    assert not logged_in(there, other)  # the other session is over
    assert logged_in(here, session)  # the one that made the change stays
    assert token_works(portal, token)  # tokens stay unless asked for

    resp, page = change_password(here, session, "second-password", "third-password",
                                 revoke_tokens="on")
    assert resp.status == 200 and "API tokens were revoked." in page
    assert not token_works(portal, token) and logged_in(here, session)


def test_a_password_set_with_the_cli_ends_every_session(portal):
    conn = https_connection(portal)
    session = portal_login(conn, "alice", "first-password")[2]
    assert logged_in(conn, session)
    portal.cli("user", "passwd", "alice", "--password", "reset-by-admin")
    assert not logged_in(conn, session)


# -- 2. next= cannot leave the site ------------------------------------------------------

REFUSED = ["//evil.example", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
           "/\n/evil.example", "/%09/evil.example", "/%0a/evil.example", "/%0D%0A/evil.example",
           "/%2F/evil.example", "/%2f%2fevil.example", "/%5Cevil.example", "/%5c/evil.example",
           "/%2509/evil.example", "/%252F/evil.example", "https://evil.example/",
           "https:evil.example", "javascript:alert(1)", "evil.example", " /cgi-bin/ls.py",
           "/ /evil.example", "/\u3000/evil.example", "/\x00", "/%00", "/", "", "/\u00e9"]
LOCAL = ["/cgi-bin/jobman.py", "/cgi-bin/jobman.py?state=QUEUED&page=2",
         "/cgi-bin/fileman.py?path=a%2Fb", "/api/ls"]


@pytest.mark.parametrize("target", REFUSED)
def test_next_outside_the_site_falls_back_to_the_dashboard(target):
    assert safe_next(target) == DASHBOARD


@pytest.mark.parametrize("target", LOCAL)
def test_next_inside_the_site_is_kept(target):
    assert safe_next(target) == target


def test_login_does_not_redirect_off_site(portal):
    conn = https_connection(portal)
    for target in ("/\t/evil.example", "/%09/evil.example", "/\\evil.example", "//evil.example"):
        resp, _body, session = portal_login(conn, "alice", "first-password", target)
        assert resp.status == 303 and resp.headers["Location"] == DASHBOARD, target
        assert session
    resp = portal_login(conn, "alice", "first-password", "/cgi-bin/jobman.py?state=QUEUED")[0]
    assert resp.headers["Location"] == "/cgi-bin/jobman.py?state=QUEUED"
    user = {"cert": "%s/users/alice/user.crt" % portal.state,
            "key": "%s/users/alice/user.key" % portal.state}
    resp, _ = request(https_connection(portal, user), "GET", "/login?next=/%2509/evil.example")
    assert resp.status == 303 and resp.headers["Location"] == DASHBOARD


# -- 3. throttling: the source slows down, the account is never locked -----------------

def test_guessing_slows_the_source_but_never_locks_the_account(portal):
    attacker = https_connection(portal)
    statuses = [portal_login(attacker, "alice", "guess-%d" % i)[0].status for i in range(8)]
    # the real alice, elsewhere, is not locked out
    resp, page, session = portal_login(https_connection(portal, source="127.0.0.2"),
                                       "alice", "first-password")
    assert resp.status == 303 and session, page
    # the guesser is slowed down: HTTP 429 with Retry-After, even for the right password
    assert statuses[:3] == [401] * 3 and statuses[-1] == 429, statuses
    resp, page, session = portal_login(attacker, "alice", "first-password")
    assert resp.status == 429 and not session and "Too many failed attempts" in page
    assert int(resp.headers["Retry-After"]) >= 1


def test_one_source_is_capped_across_names(portal):
    conn = https_connection(portal, source="127.0.0.3")
    statuses = [portal_login(conn, "nobody%d" % i, "guess")[0].status for i in range(24)]
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429, statuses
    resp = portal_login(https_connection(portal, source="127.0.0.4"), "alice",
                        "first-password")[0]
    assert resp.status == 303


def test_throttle_delays_grow_and_a_success_clears_them():
    now = [1000.0]
    throttle = LoginThrottle(free=3, max_delay=300, burst=100, clock=lambda: now[0])
    assert [throttle.attempt("10.0.0.1", "alice") for _ in range(3)] == [0, 0, 0]
    assert throttle.attempt("10.0.0.1", "alice") == 1
    assert throttle.attempt("10.0.0.2", "alice") == 0  # another source
    for delay in (1, 2, 4, 8):
        now[0] += delay
        assert throttle.attempt("10.0.0.1", "alice") == 0
        assert throttle.attempt("10.0.0.1", "alice") == delay * 2
    now[0] += 10 ** 6
    throttle.attempt("10.0.0.1", "alice")
    throttle.succeeded("10.0.0.1", "alice")
    assert throttle.attempt("10.0.0.1", "alice") == 0
    assert source_key("2001:db8::1") == source_key("2001:db8::2") != source_key("2001:db9::1")
    assert source_key("::ffff:10.0.0.1") == "10.0.0.1"


def timed_login(app, source, user, password):
    """Seconds for the POST alone (form loaded and TLS set up before)."""
    conn = https_connection(app, source=source)
    resp, page = request(conn, "GET", "/login")
    cookie = resp.headers["Set-Cookie"].split(";")[0]
    fields = {"_csrf": csrf_of(page), "user": user, "password": password}
    started = time.perf_counter()
    resp, _page = request(conn, "POST", "/login", fields, cookie)
    elapsed = time.perf_counter() - started
    conn.close()
    assert resp.status == 401
    return elapsed


def test_unknown_names_take_as_long_as_known_ones(portal):
    known, unknown = [], []
    for i in range(10):  # one fresh source per try: no throttling in the way
        known.append(timed_login(portal, "127.0.1.%d" % (2 * i + 1), "alice", "wrong-%d" % i))
        unknown.append(timed_login(portal, "127.0.1.%d" % (2 * i + 2), "nobody%d" % i,
                                   "wrong-%d" % i))
    assert statistics.median(unknown) >= 0.5 * statistics.median(known), (known, unknown)


# -- 4. the login form carries a pre-session CSRF token ---------------------------------

def test_login_needs_the_token_of_its_own_form(portal):
    conn = https_connection(portal)
    creds = {"user": "alice", "password": "first-password"}
    for agent in (BROWSER, "curl/8.0"):
        resp, page = request(conn, "POST", "/login", creds, agent=agent)
        assert resp.status == 403 and "login form has expired" in page
        assert "mig_session" not in resp.headers.get("Set-Cookie", "")
    resp, page = request(conn, "GET", "/login")
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("__Host-mig_login=")
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    cookie, token = cookie.split(";")[0], csrf_of(page)
    other_resp, _ = request(https_connection(portal), "GET", "/login")
    other_cookie = other_resp.headers["Set-Cookie"].split(";")[0]
    for fields, jar in ((dict(creds, _csrf=token), None), (dict(creds, _csrf=token), other_cookie),
                        (dict(creds, _csrf="0" * 64), cookie), (creds, cookie)):
        resp, page = request(conn, "POST", "/login", fields, jar)
        assert resp.status == 403 and "login form has expired" in page
    resp, _ = request(conn, "POST", "/login", dict(creds, _csrf=token), cookie)
    assert resp.status == 303 and resp.headers["Set-Cookie"].startswith("mig_session=")
