"""Files by address, outside the backends: a user's home under
/cert_redirect/ (GET downloads, PUT/CERTPUT uploads) and a share link's
folder under /share_redirect/ID/ (GET, SHAREPUT/PUT; the link id is the
key).  Downloads are sandboxed; upload replies are CERTPUT's 0/1 lines."""

import mimetypes
import os

from mig.backends.shares import share_download, share_upload
from mig.backends.files import put_file
from mig.errors import AuthError, MigError
from mig.web.response import Response, disk_full_refused

# Downloads are shown sandboxed: no script, no forms, no plugins.
SANDBOX_CSP = "sandbox; default-src 'none'; base-uri 'none'; form-action 'none'"
TEXT_SUFFIXES = (".stdout", ".stderr", ".status", ".io-status", ".mrsl", ".log", ".txt",
                 ".conf", ".cfg", ".ini", ".md", ".csv", ".out", ".err")


def content_type(path):
    """Job outputs and other plain text are shown as text, not offered as downloads."""
    if path.lower().endswith(TEXT_SUFFIXES):
        return "text/plain; charset=utf-8"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def download(dispatcher, req, rel):
    user, _how = dispatcher.authenticate(req)
    home = dispatcher.grid.users.home_folder(user)
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

def upload(dispatcher, req, rel):
    user, how = dispatcher.authenticate(req)
    if req.is_browser() and how == "cert":
        return Response(403, "1\nuploads from browsers go through the Files page\n")
    if "Content-Length" not in req.headers:
        return Response(411, "1\nContent-Length required\n")
    length = req.content_length()
    if length > dispatcher.grid.config.max_upload_mb * 1024 * 1024:
        return Response(413, "1\nfile larger than %d MB\n" % dispatcher.grid.config.max_upload_mb)
    try:
        with disk_full_refused("upload of %s" % rel):
            return put_reply(0, put_file(dispatcher.context(user, req.method), rel, req.rfile,
                                         length, req.header("Content-Type")))
    except MigError as exc:
        return put_reply(1, [exc.message] + exc.details)

def share_file(dispatcher, req, rest):
    """GET/HEAD or SHAREPUT/PUT /share_redirect/ID/PATH: no credentials, the id is the key.

    Unknown, expired or deleted links and missing files are HTTP 404, a
    missing access right 403; upload replies are CERTPUT's 0/1 lines.
    """
    share_id, _sep, rel = rest.partition("/")
    headers = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    if req.method in ("GET", "HEAD"):
        try:
            handle, size, name = share_download(dispatcher.grid, share_id, rel)
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
    if length > dispatcher.grid.config.max_upload_mb * 1024 * 1024:
        return Response(413, "1\nfile larger than %d MB\n" % dispatcher.grid.config.max_upload_mb,
                        headers=headers)
    try:
        return put_reply(0, share_upload(dispatcher.grid, share_id, rel, req.rfile, length),
                         headers)
    except MigError as exc:  # no write access (403), no such link (404), or refused
        status = exc.http_status if isinstance(exc, AuthError) or exc.http_status == 404 else 200
        return put_reply(1, [exc.message] + exc.details, headers, status)


def put_reply(code, lines, headers=None, status=200):
    """A CERTPUT/SHAREPUT reply as MiG's scripts read it: 0 or 1, then lines."""
    return Response(status, "%d\n%s\n" % (code, "\n".join(lines)), headers=headers)


def home_file(dispatcher, req, rel):
    """/cert_redirect/PATH: GET downloads, PUT/CERTPUT uploads."""
    if req.method in ("GET", "HEAD"):
        return download(dispatcher, req, rel)
    if req.method in ("PUT", "CERTPUT"):
        return upload(dispatcher, req, rel)
    return Response(405, "use GET to download or PUT/CERTPUT to upload\n",
                    headers={"Allow": "GET, HEAD, PUT, CERTPUT"})
