"""The one place where every request is authenticated, checked and rendered.

Routes: ``/cgi-bin/NAME.py`` and ``/wsgi-bin/NAME.py`` (MiG's URLs, txt or
html by ``output_format``), ``/api/NAME`` (JSON by default), file GET and
PUT/CERTPUT under ``/cert_redirect/``, share link GET and SHAREPUT/PUT under
``/share_redirect/ID/`` (no credentials: the link id is the key), and the
public landing page.  Backends in transfer.SHARE_ACCESS also run for a
``share_id`` field instead of credentials, on the shared folder only.
Backends never see HTTP: they get validated arguments and a Context, and
return output objects; every MigError becomes a MiG error reply here.
"""

import contextlib
import errno
import html
import importlib.resources
import logging
import mimetypes
import os
import re
import time
import urllib.parse

from mig import backends as B
from mig.backends import transfer as T
from mig.backends.catalog import load_all
from mig.backends.files import put_file
from mig.core import auth
from mig.errors import AccessDenied, AuthError, ClientError, MigError, describe, disk_full
from mig.render import FORMATS
from mig.render import html as html_render
from mig.render.objects import error as error_object
from mig.render.objects import header as header_object
from mig.web import disposition
from mig.web import sessions as S
from mig.web.results import Results
from mig.web import rpc
from mig.web.response import Response, redirect
from mig.web.request import (close_files, merge, parse_form, parse_json_fields,
                              parse_multipart)

log = logging.getLogger("mig.web")

# Downloads are shown sandboxed: no script, no forms, no plugins.
SANDBOX_CSP = "sandbox; default-src 'none'; base-uri 'none'; form-action 'none'"
BACKEND_PREFIXES = ("/cgi-bin/", "/wsgi-bin/")
MAX_FORM_BYTES = 32 * 1024 * 1024  # url-encoded and JSON bodies are held in memory
ANONYMOUS_BODY_BYTES = 65 * 1024 * 1024  # a share-link chunk (64 MiB) and its form
ANONYMOUS_FORM_BYTES = 64 * 1024  # enough to say which format the refusal should take
MAX_TEXT_BYTES = 16 * 1024 * 1024  # the non-file fields of an authenticated multipart body
MAX_MULTIPART_OVERHEAD = 1024 * 1024  # part headers and fields beside the files
AUTH_REQUIRED = ("authentication required: present a client certificate of this grid "
                 "or an 'Authorization: Bearer TOKEN' header")
SCRIPT_AGENTS = ("curl", "python", "xmlrpc", "jsonrpc", "wget", "mig")


class Request:
    """What the dispatcher needs from the HTTP layer."""

    def __init__(self, method, target, headers, rfile, client_dn=None, peer=""):
        self.method = method.upper()
        parsed = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parsed.path)
        self.query = parsed.query
        self.headers = headers
        self.rfile = rfile
        self.client_dn = client_dn
        self.peer = peer
        self.session_id = S.cookie_value(headers.get("Cookie", ""))
        self.fields = {}  # the fields read so far (see Dispatcher._read_fields)
        self.files = []
        self.keep_body = False  # a raw body its backend reads itself (transfer.RAW_BODY)
        self.share_home = None  # the shared folder when a share link stands in for a login

    def header(self, name, default=""):
        return self.headers.get(name, default) or default

    def content_length(self):
        try:
            return max(0, int(self.header("Content-Length", "0")))
        except ValueError:
            raise ClientError("invalid Content-Length") from None

    def is_browser(self):
        """Requests a browser could be tricked into sending need a CSRF token."""
        agent = self.header("User-Agent").lower()
        if self.header("Origin") or self.header("Sec-Fetch-Site"):
            return True
        return not agent.startswith(SCRIPT_AGENTS)


@contextlib.contextmanager
def disk_full_refused(what):
    """A full disk (blocks, inodes, quota) is the request's clear error, not a crash."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.warning("disk full: %s: %s", what, exc)
            raise disk_full(what) from None
        raise


class Dispatcher:
    def __init__(self, grid):
        self.grid = grid
        self.backends = load_all()
        self.sessions = S.Sessions(epoch=grid.users.session_epoch)
        self.limiter = S.LoginThrottle()
        self.results = Results()  # Post/Redirect/Get of the portal's forms
        self.static = {}
        # Uploaded files too large for memory are spooled here (unlinked temp files).
        self.spool_dir = grid.config.path("spool")
        os.makedirs(self.spool_dir, mode=0o700, exist_ok=True)

    # -- entry ------------------------------------------------------------------
    def handle(self, req):
        try:
            return self._route(req)
        except MigError as exc:
            return Response(exc.http_status, "%s\n" % exc.message)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                log.warning("disk full during %s %s: %s", req.method, req.path, exc)
                full = disk_full(req.path)
                return Response(full.http_status, "%s\n" % full.message)
            log.exception("request failed: %s %s", req.method, req.path)
            return Response(500, "internal error; see the appliance log\n")
        except Exception:  # the server survives any one request's failure
            log.exception("request failed: %s %s", req.method, req.path)
            return Response(500, "internal error; see the appliance log\n")
        finally:
            close_files(req.files)

    def _route(self, req):
        path = req.path
        if path in rpc.ENDPOINTS:
            return rpc.handle(self, req, rpc.ENDPOINTS[path])
        for prefix in BACKEND_PREFIXES:
            if path.startswith(prefix) and path.endswith(".py"):
                return self._backend(req, path[len(prefix):-3], "html")
        if path.startswith("/api/"):
            return self._backend(req, path[len("/api/"):].strip("/"), "json")
        if path.startswith("/share_redirect/"):
            return self._share_file(req, path[len("/share_redirect/"):])
        if path.startswith("/cert_redirect/") or path == "/cert_redirect":
            rel = path[len("/cert_redirect"):].lstrip("/")
            if req.method in ("GET", "HEAD"):
                return self._download(req, rel)
            if req.method in ("PUT", "CERTPUT"):
                return self._upload(req, rel)
            return Response(405, "use GET to download or PUT/CERTPUT to upload\n",
                            headers={"Allow": "GET, HEAD, PUT, CERTPUT"})
        if path in ("/", "/index.html"):
            return self._home(req)
        if path == "/login":
            return self._login(req)
        if path == "/logout":
            return self._logout(req)
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        return Response(404, "not found: %s\n" % path)

    # -- identity --------------------------------------------------------------
    def authenticate(self, req):
        """The user name for a client certificate or a Bearer token, else raise."""
        users = self.grid.users
        if req.client_dn:
            name = users.by_dn(req.client_dn)
            if name:
                return name, "cert"
            raise AuthError("your certificate (%s) is not registered on this grid"
                            % req.client_dn)
        authz = req.header("Authorization")
        if authz.lower().startswith("bearer "):
            name = users.by_token(authz[7:].strip())
            if name:
                return name, "token"
            raise AuthError("the API token is not valid")
        name = self.sessions.user(req.session_id)
        if name and users.exists(name):
            return name, "session"
        raise AuthError(AUTH_REQUIRED)

    def context(self, user, method):
        return B.Context(user, self.grid, self.grid.users.home_folder(user), method)

    # -- backends --------------------------------------------------------------------
    def _read_fields(self, req, limit=MAX_FORM_BYTES, before_file=None):
        """Query and body fields.  A multipart body is streamed (files spooled, see
        request.parse_multipart) and may be up to the upload limit; any other body
        is held in memory and may have at most limit bytes.  before_file (see
        parse_multipart) is given for requests without credentials, which get
        the small anonymous caps."""
        fields = parse_form(req.query)
        if req.method not in ("POST", "PUT") or req.keep_body:
            return fields
        length = req.content_length()
        kind = req.header("Content-Type").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            anonymous = before_file is not None
            cap = ANONYMOUS_BODY_BYTES if anonymous else \
                self.grid.config.max_upload_mb * 1024 * 1024 + MAX_MULTIPART_OVERHEAD
            if length > cap:
                raise ClientError("request body too large (at most %d bytes)" % cap)
            req.fields = fields  # filled as parts arrive: a refusal can still pick its format
            _form, req.files = parse_multipart(
                req.rfile, length, req.header("Content-Type"), fields, self.spool_dir,
                ANONYMOUS_FORM_BYTES if anonymous else MAX_TEXT_BYTES, before_file)
            return fields
        if length > limit:
            raise ClientError("request body too large (at most %d bytes)" % limit)
        body = req.rfile.read(length) if length else b""
        if kind == "application/json":
            req.fields = merge(fields, parse_json_fields(body))
        else:
            req.fields = merge(fields, parse_form(body.decode("utf-8", "replace")))
        return req.fields

    def _backend(self, req, name, default_format):
        start = time.monotonic()
        # rangefileaccess reads a PUT body itself (raw bytes, not a form): ctx.body
        req.keep_body = req.method == "PUT" and name in T.RAW_BODY
        backend = self.backends.get(name)
        title = backend.title if backend else name
        fields = req.fields = parse_form(req.query)
        page, once, prg = None, "", False
        try:
            # Credentials are checked before the body is read: strangers get only
            # what a share link allows (see _read_anonymous).
            try:
                user, how = self.authenticate(req)
                with disk_full_refused("reading the request"):
                    fields = self._read_fields(req)
            except AuthError as exc:
                user, refusal = None, exc
                fields = self._read_anonymous(req, name, refusal)
            if backend is None:
                raise ClientError("no such operation: %s" % name)
            share_id = (fields.get("share_id") or [""])[-1] if name in T.SHARE_ACCESS else ""
            if share_id:  # a share link, not a login: the owner's files, confined to the share
                req.share_home = T.share_home(self.grid, share_id, name)
                user, how = req.share_home.owner, "share"
            elif user is None:
                raise refusal
            session = req.session_id if how == "session" else ""
            page = html_render.Page(active=name) if how == "share" else \
                html_render.Page(user, auth.csrf_token(self.grid.secret, user, session), name)
            prg = req.method == "POST" and backend.state_changing and how != "share" and \
                output_format(req.fields, default_format) == "html"
            once = (fields.get("_once") or [""])[-1] if prg else ""
            kept = self._kept_result(req, fields, user, how, default_format)
            first = self.results.used(user, once) if prg else None
            if kept is not None:
                objects, code, description = kept
            elif first:  # the same form posted again: its first result
                return redirect("%s?result=%s" % (req.path, first))
            else:
                objects, code, description = self.run_backend(req, name, fields, user, how)
        except MigError as exc:
            fmt = output_format(req.fields, default_format)
            if isinstance(exc, AuthError) and not isinstance(exc, AccessDenied):
                if fmt == "html" and req.method == "GET":
                    return redirect("/login?" + urllib.parse.urlencode({"next": req.path}))
                render, ctype = FORMATS[fmt]
                body = render([error_object(exc.message)], exc.exit_code, exc.description,
                              title, time.monotonic() - start)
                return Response(401, body, ctype, {"WWW-Authenticate": "Bearer"})
            objects = failed_objects(exc, backend, req, output_format(req.fields, default_format))
            code, description = exc.exit_code, exc.description
        fmt = output_format(req.fields, default_format)
        if prg:
            # Post/Redirect/Get: the result is shown by a GET, so a reload
            # does not post again.
            rid = self.results.put(page.user, once, (objects, code, description))
            return redirect("%s?result=%s" % (req.path, rid))
        binary = [o for o in objects if o["object_type"] == "binary"]
        if binary and code == 0 and fmt != "json":
            item = binary[0]
            return Response(200, item["data"], item["content_type"], {
                "Content-Disposition": disposition.attachment(item["filename"])})
        render, ctype = FORMATS[fmt]
        if fmt == "html":
            body = render(objects, code, description, title, time.monotonic() - start,
                          page=page)
        else:
            body = render(objects, code, description, title, time.monotonic() - start)
        timing = "app;dur=%.2f" % ((time.monotonic() - start) * 1000)
        return Response(200, body, ctype, {"Server-Timing": timing})

    def _kept_result(self, req, fields, user, how, default_format):
        """The result a form post left for this GET (see mig.web.results), or None."""
        rid = (fields.get("result") or [""])[-1]
        if req.method != "GET" or not rid or how == "share" or \
                output_format(req.fields, default_format) != "html":
            return None
        kept = self.results.get(user, rid)
        if kept is None:
            raise ClientError("this result page has expired: the action was done; see "
                              "your Jobs or Files for where things stand now")
        return kept

    def _read_anonymous(self, req, name, refusal):
        """The fields of a request without credentials, checked before its body is read.

        Only share links work without credentials, and only for the backends in
        T.SHARE_ACCESS: a link named in the query is checked before anything is
        read, one named in a multipart body before the first file part; other
        bodies are small forms.  So a stranger cannot make the server read (or
        hold) a large body.  refusal: the AuthError to raise when no link helps.
        """
        def refuse(_fields=None):
            raise refusal
        if name not in T.SHARE_ACCESS:
            if req.content_length() > ANONYMOUS_FORM_BYTES:
                refuse()
            return self._read_fields(req, ANONYMOUS_FORM_BYTES, refuse)
        share_id = (req.fields.get("share_id") or [""])[-1]
        multipart = req.header("Content-Type").lower().startswith("multipart/form-data")
        if share_id:
            T.share_home(self.grid, share_id, name)
        elif req.content_length() > ANONYMOUS_FORM_BYTES and not multipart:
            refuse()

        def before_file(fields):  # the query's share_id is among fields too
            link = (fields.get("share_id") or [""])[-1]
            if not link:
                refuse()
            T.share_home(self.grid, link, name)
        return self._read_fields(req, ANONYMOUS_FORM_BYTES, before_file)

    def run_backend(self, req, name, fields, user, how, browser=None):
        """CSRF check, validation and run of one backend for an authenticated user.

        Shared by the form/JSON routes and the RPC interfaces (mig.web.rpc);
        browser: whether the request may come from a browser (default
        req.is_browser()).  Returns (objects, exit_code, description); raises
        MigError for every refusal.
        """
        backend = self.backends.get(name)
        if backend is None:
            raise ClientError("no such operation: %s" % name)
        session = req.session_id if how == "session" else ""
        if backend.state_changing:
            if req.method != "POST":
                raise ClientError("%s changes state: use POST" % name)
            if browser is None:
                browser = req.is_browser()
            needs_token = how == "session" or (how == "cert" and browser)
            if needs_token and not auth.check_csrf(
                    self.grid.secret, user, (fields.get("_csrf") or [""])[-1], session):
                raise AuthError("missing or invalid CSRF token for %s" % name)
        if how == "share" and "share_id" not in backend.fields:
            fields = {k: v for k, v in fields.items() if k != "share_id"}
        args = backend.validate(fields)
        ctx = self.context(user, req.method)
        ctx.files, ctx.session = req.files, session
        # a password change ends the user's other sessions, not the one making it
        ctx.end_other_sessions = lambda: self.sessions.drop_user(user, keep=session or None)
        ctx.base_url = request_base_url(req, self.grid.config)
        # transfer backends: Content-Range (uploadchunked), the raw PUT body (rangefileaccess)
        ctx.headers = req.headers
        if req.keep_body:
            ctx.body, ctx.body_length = req.rfile, req.content_length()
        if how == "share":
            ctx.home = req.share_home
        with disk_full_refused(name):
            result = backend.run(ctx, args)
        objects, code = result.objects, result.exit_code
        if not any(o["object_type"] == "header" for o in objects):
            objects = [header_object(backend.header)] + objects
        return objects, code, result.description or describe(code)

    # -- files -------------------------------------------------------------------------
    def _download(self, req, rel):
        user, _how = self.authenticate(req)
        home = self.grid.users.home_folder(user)
        try:
            path = home.resolve(rel, must_exist=True)
        except MigError as exc:
            return Response(404, "%s\n" % exc.message)
        if not os.path.isfile(path):
            return Response(404, "%s: No such file\n" % rel)
        ctype = content_type(path)
        headers = {"Content-Security-Policy": SANDBOX_CSP}
        handle = open(path, "rb")
        size = os.fstat(handle.fileno()).st_size
        return Response(200, content_type=ctype, headers=headers, stream=handle, length=size)

    def _upload(self, req, rel):
        user, how = self.authenticate(req)
        if req.is_browser() and how == "cert":
            return Response(403, "1\nuploads from browsers go through the Files page\n")
        if "Content-Length" not in req.headers:
            return Response(411, "1\nContent-Length required\n")
        length = req.content_length()
        if length > self.grid.config.max_upload_mb * 1024 * 1024:
            return Response(413, "1\nfile larger than %d MB\n" % self.grid.config.max_upload_mb)
        try:
            with disk_full_refused("upload of %s" % rel):
                ok, lines = put_file(self.context(user, req.method), rel, req.rfile, length,
                                     req.header("Content-Type"))
        except MigError as exc:
            ok, lines = False, [exc.message]
        return Response(200, "%d\n%s\n" % (0 if ok else 1, "\n".join(lines)))

    def _share_file(self, req, rest):
        """GET/HEAD or SHAREPUT/PUT /share_redirect/ID/PATH: no credentials, the id is the key.

        Unknown, expired or deleted links and missing files are HTTP 404, a
        missing access right 403; upload replies are CERTPUT's 0/1 lines.
        """
        share_id, _sep, rel = rest.partition("/")
        headers = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
        if req.method in ("GET", "HEAD"):
            try:
                handle, size, name = T.share_download(self.grid, share_id, rel)
            except MigError as exc:
                return Response(exc.http_status, "%s\n" % exc.message, headers=headers)
            headers["Content-Security-Policy"] = SANDBOX_CSP
            return Response(200, content_type=content_type(name), headers=headers,
                            stream=handle, length=size)
        if req.method not in ("PUT", "SHAREPUT"):
            return Response(405, "use GET to download or SHAREPUT/PUT to upload\n",
                            headers=dict(headers, Allow="GET, HEAD, PUT, SHAREPUT"))
        if "Content-Length" not in req.headers:
            return Response(411, "1\nContent-Length required\n", headers=headers)
        length = req.content_length()
        if length > self.grid.config.max_upload_mb * 1024 * 1024:
            return Response(413, "1\nfile larger than %d MB\n" % self.grid.config.max_upload_mb,
                            headers=headers)
        try:
            ok, lines = T.share_upload(self.grid, share_id, rel, req.rfile, length)
        except AuthError as exc:  # no write access
            return Response(exc.http_status, "1\n%s\n" % exc.message, headers=headers)
        except MigError as exc:
            if exc.http_status == 404:
                return Response(404, "1\n%s\n" % exc.message, headers=headers)
            ok, lines = False, [exc.message]
        return Response(200, "%d\n%s\n" % (0 if ok else 1, "\n".join(lines)), headers=headers)

    def _home(self, req):
        try:
            self.authenticate(req)
        except AuthError:
            return redirect("/login")
        return redirect("/cgi-bin/dashboard.py")

    def _login_page(self, req, message="", next_path="", user="", status=None, headers=None):
        """The login form, with a token bound to a pre-login cookie: against login
        CSRF (a foreign page logging the browser into the attacker's account)."""
        config = self.grid.config
        headers = dict(headers or {})
        nonce = S.login_nonce(req.header("Cookie"))
        if not nonce:
            nonce = S.new_login_nonce()
            headers["Set-Cookie"] = S.set_login_cookie(nonce)
        error = '<p class="msg error" role="alert">%s</p>' % html.escape(message) if message else ""
        body = (
            '<div class="login panel"><h1>MiG appliance</h1>%s'
            '<form class="stacked" method="post" action="/login">'
            '<input type="hidden" name="_csrf" value="%s">'
            '<input type="hidden" name="next" value="%s">'
            '<label for="f-user">User name</label>'
            '<input id="f-user" type="text" name="user" value="%s" autocomplete="username" autofocus>'
            '<label for="f-password">Password</label>'
            '<input id="f-password" type="password" name="password" autocomplete="current-password">'
            '<div class="actions"><button type="submit">Log in</button></div></form>'
            '<p class="muted">First time here? Log in as <strong>admin</strong> with the password '
            'in <code>%s</code> on the appliance host, then add users with '
            '<code>python3 migappliance.py user add NAME</code>. A browser with a certificate '
            'of this grid is logged in automatically.</p></div>'
            % (error, S.login_csrf_token(self.grid.secret, nonce), html.escape(next_path),
               html.escape(user), html.escape(config.path("admin-credentials.txt"))))
        return Response(status or (401 if message else 200),
                        html_render.public_page("Log in", body), "text/html; charset=utf-8",
                        headers)

    def _login(self, req):
        if req.method == "GET":
            try:
                self.authenticate(req)  # a grid certificate logs in by itself
                return redirect(safe_next(parse_form(req.query).get("next", [""])[-1]))
            except AuthError:
                return self._login_page(req, next_path=parse_form(req.query).get("next", [""])[-1])
        if req.method != "POST":
            return Response(405, "use POST to log in\n", headers={"Allow": "GET, POST"})
        fields = self._read_fields(req, ANONYMOUS_FORM_BYTES, refuse_files)
        user = (fields.get("user") or [""])[-1].strip()
        password = (fields.get("password") or [""])[-1]
        next_path = (fields.get("next") or [""])[-1]
        if not S.check_login_csrf(self.grid.secret, S.login_nonce(req.header("Cookie")),
                                  (fields.get("_csrf") or [""])[-1]):
            return self._login_page(req, "This login form has expired or was not loaded from "
                                    "this site: please log in again.", next_path, user, 403)
        wait = self.limiter.attempt(req.peer, user)  # per source: never locks the account
        if wait:
            return self._login_page(req, "Too many failed attempts: try again in %d seconds."
                                    % wait, next_path, user, 429, {"Retry-After": str(wait)})
        if not self.grid.users.check_password(user, password):
            return self._login_page(req, "Wrong user name or password.", next_path, user)
        self.limiter.succeeded(req.peer, user)
        sid = self.sessions.create(user)
        return redirect(safe_next(next_path), {"Set-Cookie": S.set_cookie(sid)})

    def _logout(self, req):
        if req.method != "POST":
            return Response(405, "use POST to log out\n", headers={"Allow": "POST"})
        fields = self._read_fields(req, ANONYMOUS_FORM_BYTES, refuse_files)
        user = self.sessions.user(req.session_id)
        token = (fields.get("_csrf") or [""])[-1]
        if user and auth.check_csrf(self.grid.secret, user, token, req.session_id):
            self.sessions.drop(req.session_id)
        elif user:
            return Response(403, "missing or invalid CSRF token\n")
        return redirect("/login", {"Set-Cookie": S.set_cookie("", max_age=0)})

    def _static(self, name):
        if name not in ("portal.css", "portal.js", "files.js"):
            return Response(404, "not found\n")
        data = self.static.get(name)
        if data is None:
            data = importlib.resources.files("mig.web").joinpath("static", name).read_bytes()
            self.static[name] = data
        ctype = "text/css" if name.endswith(".css") else "text/javascript"
        return Response(200, data, ctype + "; charset=utf-8",
                        {"Cache-Control": "max-age=300"})


_MISSING_FIELD = re.compile(r"^missing required field: ([A-Za-z0-9_]+)")
_INVALID_VALUE = re.compile(r"^invalid value for ([A-Za-z0-9_]+): (.*) \(expected (.*)\)$", re.S)
_UNEXPECTED_FIELD = re.compile(r"^input parsing error: ")


def failed_objects(exc, backend, req, fmt):
    """The objects of a refused request.  Scripts get MiG's wording; a browser
    gets it in words for people (no internal field names) and the way back."""
    if fmt != "html":
        return [error_object(exc.message)]
    objects = [error_object(for_people(exc.message, backend))]
    back = local_referer(req)
    if back:
        objects.append({"object_type": "links", "links": [(back, "Back to the page you "
                                                                 "came from")]})
    return objects


def for_people(message, backend):
    """A field check's message with the field's meaning instead of its name."""
    def meaning(name):
        spec = backend.fields.get(name) if backend else None
        if spec is not None and spec.help and not re.search(r"[a-z]_[0-9N]", spec.help):
            return spec.help
        if re.match(r"^[a-z]+(_[a-z]+)?$", name):  # job_id: "the job id"
            return "the " + name.replace("_", " ")
        return "a field this page needs"
    missing = _MISSING_FIELD.match(message)
    if missing:
        spec = backend.fields.get(missing.group(1)) if backend else None
        if spec is not None and spec.multi:  # a list to pick from: nothing was ticked
            return "Nothing was chosen: tick %s, then try again." % meaning(missing.group(1))
        return "Nothing was given for %s: fill it in and try again." % meaning(missing.group(1))
    invalid = _INVALID_VALUE.match(message)
    if invalid:
        return "%s is not accepted for %s: expected %s." % (
            invalid.group(2), meaning(invalid.group(1)), invalid.group(3))
    if _UNEXPECTED_FIELD.match(message):
        return ("The form sent something this page does not take: open the page again "
                "from the menu and try once more.")
    return message


def local_referer(req):
    """The portal page a request came from, if it came from this site."""
    referer = urllib.parse.urlsplit(req.header("Referer"))
    if referer.netloc != req.header("Host") or not referer.path.startswith(BACKEND_PREFIXES):
        return ""
    return referer.path + ("?" + referer.query if referer.query else "")


def refuse_files(_fields):
    """before_file for forms that take no files (login, logout)."""
    raise ClientError("this form takes no files")


def output_format(fields, default):
    """The output_format a request asked for, if it is one we have."""
    fmt = (fields.get("output_format") or [default])[-1]
    return fmt if fmt in FORMATS else default


safe_next = S.safe_next  # only local portal paths: never an open redirect


TEXT_SUFFIXES = (".stdout", ".stderr", ".status", ".io-status", ".mrsl", ".log", ".txt",
                 ".conf", ".cfg", ".ini", ".md", ".csv", ".out", ".err")


def content_type(path):
    """Job outputs and other plain text are shown as text, not offered as downloads."""
    if path.lower().endswith(TEXT_SUFFIXES):
        return "text/plain; charset=utf-8"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def request_base_url(req, config):
    """https://HOST:PORT as the client reached us (for generated configs), else the
    configured URL.  Only a plain host[:port] Host header is trusted."""
    host = req.header("Host")
    if host and all(c.isalnum() or c in ".-:[]" for c in host) and len(host) < 256:
        return "https://" + host
    return config.url
