"""Logging in and out of the portal: the login form (its token bound to a
pre-login cookie, against login CSRF), password checks with throttling per
source and name, sessions, and the landing page."""

from mig.core import auth
from mig.errors import AuthError
from mig.render import html as html_render
from mig.render.publicforms import login_panel
from mig.web import sessions as S
from mig.web.request import ANONYMOUS_FORM_BYTES, parse_form, refuse_files
from mig.web.response import Response, redirect


def landing(dispatcher, req):
    """/ and /index.html: the Dashboard when signed in, else the login form."""
    try:
        dispatcher.authenticate(req)
    except AuthError:
        return redirect("/login")
    return redirect("/cgi-bin/dashboard.py")


def login_page(dispatcher, req, message="", next_path="", user="", status=None,
               headers=None):
    """The login form, with a token bound to a pre-login cookie: against login
    CSRF (a foreign page logging the browser into the attacker's account)."""
    config = dispatcher.grid.config
    headers = dict(headers or {})
    nonce = S.login_nonce(req.header("Cookie"))
    if not nonce:
        nonce = S.new_login_nonce()
        headers["Set-Cookie"] = S.set_login_cookie(nonce)
    body = login_panel(message, S.login_csrf_token(dispatcher.grid.secret, nonce),
                                   next_path, user, config.path("admin-credentials.txt"))
    return Response(status or (401 if message else 200),
                    html_render.public_page("Log in", body), "text/html; charset=utf-8",
                    headers)


def login(dispatcher, req):
    if req.method == "GET":
        try:
            dispatcher.authenticate(req)  # a grid certificate logs in by itself
            return redirect(S.safe_next(parse_form(req.query).get("next", [""])[-1]))
        except AuthError:
            return login_page(dispatcher, req, next_path=parse_form(req.query).get("next", [""])[-1])
    if req.method != "POST":
        return Response(405, "use POST to log in\n", headers={"Allow": "GET, POST"})
    fields = dispatcher.read_fields(req, ANONYMOUS_FORM_BYTES, refuse_files)
    user = (fields.get("user") or [""])[-1].strip()
    password = (fields.get("password") or [""])[-1]
    next_path = (fields.get("next") or [""])[-1]
    if not S.check_login_csrf(dispatcher.grid.secret, S.login_nonce(req.header("Cookie")),
                              (fields.get("_csrf") or [""])[-1]):
        return login_page(dispatcher, req, "This login form has expired or was not loaded from "
                                "this site: please log in again.", next_path, user, 403)
    wait = dispatcher.limiter.attempt(req.peer, user)  # per source: never locks the account
    if wait:
        return login_page(dispatcher, req, "Too many failed attempts: try again in %d seconds."
                                % wait, next_path, user, 429, {"Retry-After": str(wait)})
    if not dispatcher.grid.users.check_password(user, password):
        return login_page(dispatcher, req, "Wrong user name or password.", next_path, user)
    dispatcher.limiter.succeeded(req.peer, user)
    sid = dispatcher.sessions.create(user)
    return redirect(S.safe_next(next_path), {"Set-Cookie": S.set_cookie(sid)})


def logout(dispatcher, req):
    if req.method != "POST":
        return Response(405, "use POST to log out\n", headers={"Allow": "POST"})
    fields = dispatcher.read_fields(req, ANONYMOUS_FORM_BYTES, refuse_files)
    user = dispatcher.sessions.user(req.session_id)
    token = (fields.get("_csrf") or [""])[-1]
    if user and auth.check_csrf(dispatcher.grid.secret, user, token, req.session_id):
        dispatcher.sessions.drop(req.session_id)
    elif user:
        return Response(403, "missing or invalid CSRF token\n")
    return redirect("/login", {"Set-Cookie": S.set_cookie("", max_age=0)})
