"""Each VGrid's git repository over HTTPS: ``/vgridgit/NAME.git``.

Git's own ``git http-backend`` (a CGI) serves the smart HTTP protocol; this
module only decides who may do what and passes the request through:

* credentials: a client certificate of this grid or an API token (a
  portal session never: a page elsewhere could make a browser post with it);
* clone and fetch (git-upload-pack): the VGrid's owners and members;
* push (git-receive-pack): the same, unless the VGrid's write setting
  says OWNERS (owners only) or NONE (nobody);
* everyone else: 403, and no hint whether the repository exists.

Who may do what, and making the bare repository on first use, is
mig/core/vgridrepo.py's (through the grid's vgrid_repository).  The
backend's reply is spooled to an unlinked file, so it goes out with a
Content-Length (the server sends no chunked replies); request bodies must
carry a Content-Length too (git does so below ``http.postBuffer``).
"""

import logging
import os
import subprocess
import tempfile
import urllib.parse

from mig.errors import AccessDenied, AuthError, MigError
from mig.web.response import Response

log = logging.getLogger("mig.gitrepo")

BACKEND = "/usr/lib/git-core/git-http-backend"
PREFIX = "/vgridgit/"
TIMEOUT = 600
READ_SERVICE, WRITE_SERVICE = "git-upload-pack", "git-receive-pack"


def split_address(rest):
    """'Lab/Sub.git/info/refs' -> ('Lab/Sub', '/info/refs'), or None."""
    name, sep, tail = rest.partition(".git")
    if not sep or (tail and not tail.startswith("/")):
        return None
    return name, tail


def _service(req, tail):
    if tail == "/info/refs":
        return urllib.parse.parse_qs(req.query).get("service", [READ_SERVICE])[0]
    return tail.lstrip("/")


def serve(dispatcher, req, rest):
    grid = dispatcher.grid
    found = split_address(rest)
    if found is None:
        return Response(404, "not a repository address: /vgridgit/NAME.git\n")
    name, tail = found
    try:
        user, how = dispatcher.authenticate(req)
        if how == "session":
            raise AuthError("git takes a client certificate or an API token, not a portal login")
    except AuthError as exc:
        return Response(401, "%s\n" % exc.message,
                        headers={"WWW-Authenticate": 'Bearer realm="MiG VGrid repositories"'})
    service = _service(req, tail)
    if service not in (READ_SERVICE, WRITE_SERVICE):
        return Response(403, "not a git service: %s\n" % service)
    try:
        folder = grid.vgrid_repository(user, name, service == WRITE_SERVICE)
    except AccessDenied as exc:
        return Response(403, "%s\n" % exc.message)
    except MigError as exc:
        return Response(404, "%s\n" % exc.message)
    return _run_backend(grid, req, user, folder, tail)


def _run_backend(grid, req, user, folder, tail):
    root = grid.vgrid_repos
    env = dict(grid.git_env(), GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1",
               PATH_INFO="/%s%s" % (folder, tail),
               REMOTE_USER=user, REQUEST_METHOD=req.method, QUERY_STRING=req.query,
               CONTENT_TYPE=req.header("Content-Type"), GATEWAY_INTERFACE="CGI/1.1",
               REMOTE_ADDR=req.peer, SERVER_PROTOCOL="HTTP/1.1")
    for header in ("Content-Encoding", "Git-Protocol"):
        if req.header(header):
            env["HTTP_" + header.upper().replace("-", "_")] = req.header(header)
    length = req.content_length() if req.method == "POST" else 0
    if length > grid.config.max_upload_mb * 1024 * 1024:
        return Response(413, "push larger than %d MB\n" % grid.config.max_upload_mb)
    env["CONTENT_LENGTH"] = str(length)
    spool = grid.config.path("spool")
    out = tempfile.TemporaryFile(dir=spool)
    err = tempfile.TemporaryFile(dir=spool)
    try:
        proc = subprocess.Popen([BACKEND], stdin=subprocess.PIPE, stdout=out, stderr=err,
                                env=env, cwd=root)
        try:
            left = length
            while left > 0:
                block = req.rfile.read(min(left, 1 << 20))
                if not block:
                    break
                proc.stdin.write(block)
                left -= len(block)
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
        code = proc.wait(timeout=TIMEOUT)
        if code != 0:
            err.seek(0)
            log.warning("git http-backend for %s failed (%d): %s", folder, code,
                        err.read(2000).decode("utf-8", "replace"))
        return _cgi_response(out)
    except BaseException:
        out.close()
        raise
    finally:
        err.close()


def _cgi_response(out):
    """A CGI reply (headers, blank line, body) in a file -> a streamed Response."""
    out.seek(0)
    status, headers = 200, {}
    while True:
        line = out.readline(8192)
        if not line or line in (b"\r\n", b"\n"):
            break
        key, _sep, value = line.decode("latin-1").partition(":")
        key, value = key.strip(), value.strip()
        if key.lower() == "status":
            status = int(value.split()[0])
        elif key.lower() != "content-length":
            headers[key] = value
    body_start = out.tell()
    size = os.fstat(out.fileno()).st_size - body_start
    ctype = headers.pop("Content-Type", "application/octet-stream")
    return Response(status, content_type=ctype, headers=headers, stream=out, length=size)
