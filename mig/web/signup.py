"""The public pages for people without a login: /signup (ask for an account;
the admins accept or reject it under People) and /pwreset (a reset link to
the address saved on the Settings page, then a new password).

Both forms carry a token bound to a pre-login cookie, as the login form
does, and are throttled per source; the reset request answers the same
whether or not the name exists."""

from mig.errors import MigError
from mig.render.publicforms import public_form
from mig.web import sessions as S
from mig.web.request import ANONYMOUS_FORM_BYTES, parse_form, refuse_files
from mig.web.response import Response

SIGNUP_FIELDS = (("name", "User name", "text", "1-32 lower-case letters, digits, '.', '_', "
                  "'-'"),
                 ("full_name", "Your name", "text", ""),
                 ("email", "E-mail", "email", "where the answer goes"),
                 ("organization", "Organization", "text", ""),
                 ("comment", "Why you want an account", "textarea", ""),
                 ("password", "Password", "password", "at least 10 characters"))
SENT = "If %s has an account with a saved e-mail address, a reset link is on its way."


def _csrf(dispatcher, req):
    """(token, headers) of a form bound to the browser's pre-login cookie."""
    headers, nonce = {}, S.login_nonce(req.header("Cookie"))
    if not nonce:
        nonce = S.new_login_nonce()
        headers["Set-Cookie"] = S.set_login_cookie(nonce)
    return S.login_csrf_token(dispatcher.grid.secret, nonce), headers


def _reply(dispatcher, req, title, action, fields, message="", error=False, status=200,
           intro="", submit="Send"):
    token, headers = _csrf(dispatcher, req)
    return Response(status, public_form(title, action, token, fields, message, error, intro,
                                        submit), "text/html; charset=utf-8", headers)


def _posted(dispatcher, req):
    """The fields of a public POST, or None when its token does not fit."""
    fields = dispatcher.read_fields(req, ANONYMOUS_FORM_BYTES, refuse_files)
    ok = S.check_login_csrf(dispatcher.grid.secret, S.login_nonce(req.header("Cookie")),
                            (fields.get("_csrf") or [""])[-1])
    return {k: v[-1] for k, v in fields.items()} if ok else None


def _new_certificate(dispatcher, req):
    """(DN, issuer DN) of a verified client certificate of another CA that no
    account has yet (see extra_client_ca), else None."""
    users = dispatcher.grid.users
    if not req.client_dn or users.by_dn(req.client_dn) or \
            req.client_issuer == users.own_ca_dn():
        return None
    return req.client_dn, req.client_issuer


def signup(dispatcher, req):
    cert = _new_certificate(dispatcher, req)

    def form(values, message="", error=False, status=200):
        fields = [(n, label, kind, "" if kind == "password" else values.get(n, ""),
                   "optional: your certificate logs you in" if cert and n == "password"
                   else hint) for n, label, kind, hint in SIGNUP_FIELDS]
        intro = "The grid's admins answer by e-mail."
        if cert:
            intro = ("You present the certificate %s (issued by %s): the account will log "
                     "in with it. " % cert) + intro
        return _reply(dispatcher, req, "Ask for an account", "/signup", fields,
                      message, error, status, intro)
    if req.method == "GET":
        return form({})
    if req.method != "POST":
        return Response(405, "use GET or POST\n", headers={"Allow": "GET, POST"})
    values = _posted(dispatcher, req)
    if values is None:
        return form({}, "This form has expired: please fill it in again.", True, 403)
    wait = dispatcher.limiter.attempt(req.peer, "signup")
    if wait:
        return form(values, "Too many requests: try again in %d seconds." % wait, True, 429)
    grid = dispatcher.grid
    try:
        request = grid.accounts.request(values.get("name"), values.get("full_name"),
                                        values.get("email"), values.get("organization"),
                                        values.get("comment"), values.get("password"),
                                        cert)
    except MigError as exc:
        return form(values, exc.message, True, 400)
    for admin in grid.accounts.answerers():
        grid.deliver_message(admin, "Account request: %s" % request["name"],
                             "%s (%s, %s) asks for the account %s%s: %s\n\nAnswer under People."
                             % (request["full_name"] or "Someone", request["email"],
                                request["organization"] or "no organization", request["name"],
                                " with the certificate %s (issued by %s)" % cert if cert
                                else "", request["comment"] or "(no reason given)"))
    return _reply(dispatcher, req, "Ask for an account", "/signup", [],
                  "Your request for %s was sent to the grid's admins; they answer by e-mail."
                  % request["name"], submit="Send another")


def pwreset(dispatcher, req):
    query = parse_form(req.query)
    token = (query.get("token") or [""])[-1]
    new_fields = [("token", "", "hidden", token, ""),
                  ("password", "New password", "password", "", "at least 10 characters")]
    ask_fields = [("name", "User name", "text", "", "")]
    if req.method == "GET":
        return _reply(dispatcher, req, "Reset your password", "/pwreset",
                      new_fields if token else ask_fields,
                      intro="" if token else "A link to set a new password goes to the "
                      "e-mail address saved on your Settings page.")
    if req.method != "POST":
        return Response(405, "use GET or POST\n", headers={"Allow": "GET, POST"})
    values = _posted(dispatcher, req)
    if values is None:
        return _reply(dispatcher, req, "Reset your password", "/pwreset", ask_fields,
                      "This form has expired: please try again.", True, 403)
    grid = dispatcher.grid
    if values.get("token"):
        try:
            name = grid.accounts.reset(values["token"], values.get("password", ""))
        except MigError as exc:
            return _reply(dispatcher, req, "Reset your password", "/pwreset",
                          [("token", "", "hidden", values["token"], "")] + new_fields[1:],
                          exc.message, True, 400)
        return _reply(dispatcher, req, "Reset your password", "/pwreset", [],
                      "The password of %s was changed: log in with it." % name,
                      submit="Done")
    wait = dispatcher.limiter.attempt(req.peer, "pwreset")
    if wait:
        return _reply(dispatcher, req, "Reset your password", "/pwreset", ask_fields,
                      "Too many requests: try again in %d seconds." % wait, True, 429)
    name = values.get("name", "").strip()
    token = grid.accounts.reset_token(name) if name else None
    if token:
        grid.mailer.send(grid.users.settings(name)["email"], "Reset your password",
                         "Someone (you, we hope) asked to reset the password of %s on %s.\n\n"
                         "Set a new one within an hour at %s/pwreset?token=%s\n\nIf it was "
                         "not you, do nothing: the old password stays."
                         % (name, grid.public_url, grid.public_url, token))
    return _reply(dispatcher, req, "Reset your password", "/pwreset", ask_fields,
                  SENT % (name or "that name"))
