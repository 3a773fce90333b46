"""The one place where every request is authenticated, checked and rendered.

ROUTES (at the end) sends each address to its handler: MiG's backend
addresses ``/cgi-bin/NAME.py`` and ``/wsgi-bin/NAME.py`` (html, or txt/json
by ``output_format``), ``/api/NAME`` (JSON), the RPC interfaces (web/rpc.py),
files by address under ``/cert_redirect/`` and ``/share_redirect/ID/``
(web/homefiles.py), logging in and out (web/login.py) and the static
files.  Backends in shares.SHARE_ACCESS also run for a ``share_id``
field instead of credentials, on the shared folder only.  Backends never
see HTTP: they get validated arguments and a Context, and return output
objects; every MigError becomes an error reply (web/failures.py).
"""

import errno
import importlib.resources
import logging
import os
import time
import urllib.parse

from mig import backends as B
from mig.backends.shares import SHARE_ACCESS, share_home
from mig.backends.catalog import load_all
from mig.core import auth
from mig.errors import AccessDenied, AuthError, ClientError, MigError, describe, disk_full
from mig.render import FORMATS
from mig.render import html as html_render
from mig.render.objects import error as error_object
from mig.render.objects import header as header_object
from mig.web import disposition
from mig.web import sessions as S
from mig.web import gitrepo, homefiles, login, publicpages, rpc, signup
from mig.web.failures import failed_objects
from mig.web.request import (ANONYMOUS_FORM_BYTES, BACKEND_PREFIXES, close_files, merge,
                             parse_form, parse_json_fields, parse_multipart)
from mig.web.response import Response, disk_full_refused, redirect
from mig.web.results import Results

log = logging.getLogger("mig.web")

MAX_FORM_BYTES = 32 * 1024 * 1024  # url-encoded and JSON bodies are held in memory
ANONYMOUS_BODY_BYTES = 65 * 1024 * 1024  # a share-link chunk (64 MiB) and its form
MAX_TEXT_BYTES = 16 * 1024 * 1024  # the non-file fields of an authenticated multipart body
MAX_MULTIPART_OVERHEAD = 1024 * 1024  # part headers and fields beside the files
AUTH_REQUIRED = ("authentication required: present a client certificate of this grid "
                 "or an 'Authorization: Bearer TOKEN' header")


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
        """The first route of ROUTES whose address matches handles the request."""
        for match, handler in ROUTES:
            found = match(req.path)
            if found is not None:
                return handler(self, req, found)
        return Response(404, "not found: %s\n" % req.path)

    # -- identity --------------------------------------------------------------
    def authenticate(self, req):
        """The user name for a client certificate or a Bearer token, else raise."""
        users = self.grid.users
        if req.client_dn:
            name = users.by_cert(req.client_dn, req.client_issuer)
            if name:
                return self._enabled(name), "cert"
            raise AuthError("your certificate (%s) is not registered on this grid; ask "
                            "for an account with it at /signup" % req.client_dn)
        authz = req.header("Authorization")
        if authz.lower().startswith("bearer "):
            name = users.by_token(authz[7:].strip())
            if name:
                return self._enabled(name), "token"
            raise AuthError("the API token is not valid")
        name = self.sessions.user(req.session_id)
        if name and users.exists(name):
            return name, "session"
        raise AuthError(AUTH_REQUIRED)

    def _enabled(self, name):
        if self.grid.users.get(name).get("disabled"):
            raise AuthError("the account %s is disabled: ask the grid's admins" % name)
        return name

    def context(self, user, method):
        return B.Context(user, self.grid, self.grid.users.home_folder(user), method)

    # -- backends --------------------------------------------------------------------
    def read_fields(self, req, limit=MAX_FORM_BYTES, before_file=None):
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
        backend = self.backends.get(name)
        # a backend declared raw_body reads a PUT body itself (bytes, not a form): ctx.body
        req.keep_body = req.method == "PUT" and backend is not None and backend.raw_body
        title = backend.title if backend else name
        fields = req.fields = parse_form(req.query)
        page, once, prg = None, "", False
        try:
            # Credentials are checked before the body is read: strangers get only
            # what a share link allows (see _read_anonymous).
            try:
                user, how = self.authenticate(req)
                with disk_full_refused("reading the request"):
                    fields = self.read_fields(req)
            except AuthError as exc:
                user, refusal = None, exc
                fields = self._read_anonymous(req, name, refusal)
            if backend is None:
                raise ClientError("no such operation: %s" % name)
            share_id = (fields.get("share_id") or [""])[-1] if name in SHARE_ACCESS else ""
            if share_id:  # a share link, not a login: the owner's files, confined to the share
                req.share_home = share_home(self.grid, share_id, name)
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
        SHARE_ACCESS: a link named in the query is checked before anything is
        read, one named in a multipart body before the first file part; other
        bodies are small forms.  So a stranger cannot make the server read (or
        hold) a large body.  refusal: the AuthError to raise when no link helps.
        """
        def refuse(_fields=None):
            raise refusal
        if name not in SHARE_ACCESS:
            if req.content_length() > ANONYMOUS_FORM_BYTES:
                refuse()
            return self.read_fields(req, ANONYMOUS_FORM_BYTES, refuse)
        share_id = (req.fields.get("share_id") or [""])[-1]
        multipart = req.header("Content-Type").lower().startswith("multipart/form-data")
        if share_id:
            share_home(self.grid, share_id, name)
        elif req.content_length() > ANONYMOUS_FORM_BYTES and not multipart:
            refuse()

        def before_file(fields):  # the query's share_id is among fields too
            link = (fields.get("share_id") or [""])[-1]
            if not link:
                refuse()
            share_home(self.grid, link, name)
        return self.read_fields(req, ANONYMOUS_FORM_BYTES, before_file)

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
        # Content-Range (uploadchunked), the raw PUT body (raw_body backends: rangefileaccess)
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


def output_format(fields, default):
    """The output_format a request asked for, if it is one we have."""
    fmt = (fields.get("output_format") or [default])[-1]
    return fmt if fmt in FORMATS else default


def request_base_url(req, config):
    """https://HOST:PORT as the client reached us (for generated configs), else the
    configured URL.  Only a plain host[:port] Host header is trusted."""
    host = req.header("Host")
    if host and all(c.isalnum() or c in ".-:[]" for c in host) and len(host) < 256:
        return "https://" + host
    return config.url


# -- the route table: (what an address matches, who answers) -------------------------------
def exactly(*paths):
    return lambda path: path if path in paths else None


def below(prefix, suffix=""):
    """The rest of an address after prefix (and before suffix), if it has them."""
    def match(path):
        if path.startswith(prefix) and path.endswith(suffix) and len(path) > len(prefix):
            return path[len(prefix):len(path) - len(suffix)]
        return None
    return match


def backend_address(path):
    """NAME of /cgi-bin/NAME.py or /wsgi-bin/NAME.py, MiG's backend addresses."""
    for prefix in BACKEND_PREFIXES:
        name = below(prefix, ".py")(path)
        if name is not None:
            return name
    return None


def home_address(path):
    """The home-relative path of /cert_redirect/PATH (or the home itself)."""
    if path == "/cert_redirect" or path.startswith("/cert_redirect/"):
        return path[len("/cert_redirect"):].lstrip("/")
    return None


ROUTES = (
    (lambda path: path if path in rpc.ENDPOINTS else None,
     lambda d, req, path: rpc.handle(d, req, rpc.ENDPOINTS[path])),
    (backend_address, lambda d, req, name: d._backend(req, name, "html")),
    (below("/api/"), lambda d, req, name: d._backend(req, name.strip("/"), "json")),
    (below("/share_redirect/"), homefiles.share_file),
    (below(gitrepo.PREFIX), gitrepo.serve),
    (publicpages.match, publicpages.serve),
    (home_address, homefiles.home_file),
    (exactly("/", "/index.html"), lambda d, req, _path: login.landing(d, req)),
    (exactly("/login"), lambda d, req, _path: login.login(d, req)),
    (exactly("/logout"), lambda d, req, _path: login.logout(d, req)),
    (exactly("/signup"), lambda d, req, _path: signup.signup(d, req)),
    (exactly("/pwreset"), lambda d, req, _path: signup.pwreset(d, req)),
    (below("/static/"), lambda d, req, name: d._static(name)),
)
