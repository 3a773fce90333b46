"""Each VGrid's git repository over HTTPS: ``/vgridgit/NAME.git``.

Git's own ``git http-backend`` (a CGI) serves the smart HTTP protocol; this
module only decides who may do what and passes the request through:

* credentials: a client certificate of this grid or an API token (a
  portal session never: a page elsewhere could make a browser post with it);
* clone and fetch (git-upload-pack): the VGrid's owners and members;
* push (git-receive-pack): the same, unless the VGrid's write setting
  says OWNERS (owners only) or NONE (nobody);
* everyone else: 403, and no hint whether the repository exists.

The bare repository is made on first use under the state folder.  The
backend's reply is spooled to an unlinked file, so it goes out with a
Content-Length (the server sends no chunked replies); request bodies must
carry a Content-Length too (git does so below ``http.postBuffer``).
"""

import logging
import os
import subprocess
import tempfile
import urllib.parse

from mig.core.vgrids import check_name
from mig.errors import AuthError, MigError
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


def repo_root(grid):
    return grid.config.path("vgrid_repos")


def repo_folder(grid, name):
    return os.path.join(repo_root(grid), urllib.parse.quote(name, safe="") + ".git")


def ensure_repo(grid, name):
    folder = repo_folder(grid, name)
    if not os.path.isdir(folder):
        os.makedirs(repo_root(grid), mode=0o700, exist_ok=True)
        subprocess.run(["git", "init", "--bare", "--quiet", folder], check=True,
                       capture_output=True, timeout=60, env=_git_env(grid))
        subprocess.run(["git", "--git-dir", folder, "config", "http.receivepack", "true"],
                       check=True, capture_output=True, timeout=60, env=_git_env(grid))
    return folder


def _git_env(grid):
    return {"PATH": "/usr/bin:/bin", "HOME": repo_root(grid), "GIT_CONFIG_NOSYSTEM": "1",
            "LANG": "C"}


def _service(req, tail):
    if tail == "/info/refs":
        return urllib.parse.parse_qs(req.query).get("service", [READ_SERVICE])[0]
    return tail.lstrip("/")


def _allowed(grid, user, name, service):
    vgrids = grid.vgrids
    if not vgrids.exists(name) or not vgrids.is_member(user, name):
        return False
    if service == WRITE_SERVICE:
        setting = vgrids.settings(name)["write_shared_files"]
        return setting == "MEMBERS" or (setting == "OWNERS" and vgrids.is_owner(user, name))
    return service == READ_SERVICE


def serve(dispatcher, req, rest):
    grid = dispatcher.grid
    found = split_address(rest)
    if found is None:
        return Response(404, "not a repository address: /vgridgit/NAME.git\n")
    name, tail = found
    try:
        check_name(name)
        user, how = dispatcher.authenticate(req)
        if how == "session":
            raise AuthError("git takes a client certificate or an API token, not a portal login")
    except AuthError as exc:
        return Response(401, "%s\n" % exc.message,
                        headers={"WWW-Authenticate": 'Bearer realm="MiG VGrid repositories"'})
    except MigError as exc:
        return Response(404, "%s\n" % exc.message)
    service = _service(req, tail)
    if service not in (READ_SERVICE, WRITE_SERVICE) or not _allowed(grid, user, name, service):
        return Response(403, "%s may not %s the repository of %s\n"
                        % (user, "push to" if service == WRITE_SERVICE else "read", name))
    ensure_repo(grid, name)
    return _run_backend(grid, req, user, name, tail)


def _run_backend(grid, req, user, name, tail):
    env = dict(_git_env(grid), GIT_PROJECT_ROOT=repo_root(grid), GIT_HTTP_EXPORT_ALL="1",
               PATH_INFO="/%s.git%s" % (urllib.parse.quote(name, safe=""), tail),
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
                                env=env, cwd=repo_root(grid))
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
            log.warning("git http-backend for %s failed (%d): %s", name, code,
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
