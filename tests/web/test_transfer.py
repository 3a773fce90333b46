"""Share links, chunked uploads and range access on a real appliance.

The owner talks with an API token (http.client); share link users send no
credentials at all: no certificate, no token, no cookie.  Asserts are on
the HTTP status, the txt reply and the files on disk.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

import pytest

from conftest import ENTRY, Appliance, exit_code, https_connection, require_tool
from conftest import write_home_file as write

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs")
ID_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    app = Appliance([sys.executable, ENTRY], str(tmp_path_factory.mktemp("transfer") / "state"))
    users = {"alice": app.add_user("alice"), "bob": app.add_user("bob")}
    app.start()
    yield app, users
    app.stop()
    app.remove_work_folder()


@pytest.fixture
def alice(grid):
    return grid[1]["alice"]


@pytest.fixture
def home(grid, request):
    """A test's own folder in alice's home."""
    name = re.sub(r"[^A-Za-z0-9]", "", request.node.name)
    os.makedirs(os.path.join(grid[1]["alice"]["home"], name))
    return name


def read(user, rel):
    with open(os.path.join(user["home"], rel), "rb") as handle:
        return handle.read()


def request(app, method, path, body=b"", headers=None, token=None):
    """(status, headers, body bytes) of one request; no credentials unless token."""
    conn = https_connection(app)
    try:
        hdrs = {"User-Agent": "python-test"}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def txt(reply):
    """(exit code, body lines after the title and header block) of a txt reply."""
    text = reply.decode("utf-8") if isinstance(reply, bytes) else reply
    lines = text.split("\n")
    assert lines[1].startswith("Title: ") and lines[2] == "" and lines[4] == "", text
    body = lines[5:]
    while body and body[-1] == "":
        body.pop()
    return exit_code(text), body


def call(app, name, fields, token=None, method="POST", raw="output_format=txt"):
    """A backend request: raw first piece (as MiG's scripts), then url-encoded fields."""
    body = raw + "".join("&%s=%s" % (k, urllib.parse.quote(v, safe="")) for k, v in fields)
    if method == "GET":
        status, _h, reply = request(app, "GET", "/cgi-bin/%s.py?%s" % (name, body), token=token)
    else:
        status, _h, reply = request(app, "POST", "/cgi-bin/%s.py" % name, body.encode(),
                                    {"Content-Type": "application/x-www-form-urlencoded"},
                                    token)
    assert status == 200, reply
    return txt(reply)


def share_call(app, name, share_id, fields, method="POST"):
    """A backend in share link mode: share_id instead of _=certauth, no credentials."""
    return call(app, name, fields, raw="share_id=%s;output_format=txt&flags=" % share_id,
                method=method)


def links_rows(body):
    return [line.split() for line in body if re.search(r"\s/share_redirect/\S+$", line)]


def create(app, user, path, read_access="", write_access="", expire="", extra=()):
    fields = [("action", "create"), ("path", path)]
    fields += [(k, v) for k, v in (("read_access", read_access), ("write_access", write_access),
                                   ("expire", expire)) if v]
    code, body = call(app, "sharelink", fields + list(extra), user["token"])
    assert code == 0, body
    rows = links_rows(body)
    assert len(rows) == 1, body
    return rows[0][0], body


def get(app, share_id, rel, method="GET"):
    status, _h, data = request(app, method, "/share_redirect/%s/%s" % (share_id, rel))
    return status, data


def put(app, share_id, rel, data, method="SHAREPUT"):
    status, _h, reply = request(app, method, "/share_redirect/%s/%s" % (share_id, rel), data)
    return status, reply.decode("utf-8")


def multipart(fields, files):
    boundary = "----migtest%d" % time.time_ns()
    out = []
    for name, value in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (boundary, name, value)).encode())
    for name, filename, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n"
                    % (boundary, name, filename)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=%s" % boundary


def chunked(app, fields, files, token=None, content_range=None, share_id=None):
    first = [("share_id", share_id)] if share_id else [("_", "certauth")]
    body, ctype = multipart(first + [("output_format", "txt")] + list(fields), files)
    headers = {"Content-Type": ctype}
    if content_range:
        headers["Content-Range"] = content_range
    status, _h, reply = request(app, "POST", "/cgi-bin/uploadchunked.py", body, headers, token)
    assert status == 200, reply
    return txt(reply)


def expire_now(app, share_id):
    """Make a link expired, as time would (the record is changed under its lock)."""
    from mig.core import sharelinks
    from mig.store.pickledb import PickleStore
    store = PickleStore(os.path.join(app.state, "db"))

    def change(links):
        links[share_id]["expires"] = time.time() - 1
        return links
    store.update(sharelinks.RECORD, change, {})


# -- the share link records --------------------------------------------------------------
def test_create_show_delete_and_links_stay_private(grid, alice, home):
    app, users = grid
    bob = users["bob"]
    write(alice, home + "/data/a.txt", "A")
    share_id, body = create(app, alice, home + "/data", read_access="true", expire="7")
    assert ID_RE.match(share_id)
    assert body[0] == "Created share link %s on %s/data ." % (share_id, home)
    assert re.match(r"^Share ID\s+Path\s+Access\s+Expires\s+URL$", body[1])
    row = links_rows(body)[0]
    assert row[1:3] == [home + "/data", "read-only"]
    expires = time.mktime(time.strptime(row[3], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(expires - (time.time() + 7 * 86400)) < 120
    assert row[4] == "/share_redirect/%s/" % share_id

    other, body = create(app, alice, home + "/data", write_access="yes")
    assert other != share_id and links_rows(body)[0][2] == "write-only"
    last_day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 400 * 86400))
    day_after = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() + 401 * 86400))
    both, body = create(app, alice, home + "/data", "true", "true", last_day)
    assert links_rows(body)[0][2:4] == ["read-write", day_after]

    code, body = call(app, "sharelink", [("action", "show")], alice["token"])
    shown = {r[0] for r in links_rows(body)}
    assert code == 0 and {share_id, other, both} <= shown
    # bob sees none of them, and cannot touch them: they are not his
    code, body = call(app, "sharelink", [("action", "show")], bob["token"])
    assert code == 0 and links_rows(body) == [] and share_id not in "\n".join(body)
    for action in ("delete", "update", "edit"):
        code, body = call(app, "sharelink", [("action", action), ("share_id", share_id)],
                          bob["token"])
        assert code == 100 and body == ["** you have no share link %s **" % share_id]

    # edit shows one link; update adds invitations (recorded, no mail) and changes access
    code, body = call(app, "sharelink", [("action", "update"), ("share_id", share_id),
                                         ("invite", "carol@example.org, dave@example.org"),
                                         ("msg", "have a look"), ("write_access", "true")],
                      alice["token"])
    assert code == 0 and links_rows(body)[0][2] == "read-write"
    assert "No e-mail is sent" in body[-1] and "carol@example.org" in body[-1]
    code, body = call(app, "sharelink", [("action", "edit"), ("share_id", share_id)],
                      alice["token"])
    assert code == 0 and "Invited: carol@example.org, dave@example.org" in body
    assert "Message: have a look" in body

    assert get(app, share_id, "a.txt") == (200, b"A")
    code, body = call(app, "sharelink", [("action", "delete"), ("share_id", share_id)],
                      alice["token"])
    assert (code, body) == (0, ["Deleted share link %s on %s/data ." % (share_id, home)])
    assert get(app, share_id, "a.txt")[0] == 404
    assert put(app, share_id, "b.txt", b"B")[0] == 404
    code, _body = share_call(app, "ls", share_id, [("path", ".")])
    assert code == 105
    code, body = call(app, "sharelink", [("action", "show")], alice["token"])
    assert share_id not in {r[0] for r in links_rows(body)}
    # state-changing: a GET does nothing
    code, body = call(app, "sharelink", [("action", "show")], alice["token"], method="GET")
    assert code == 100 and "use POST" in body[0]


@pytest.mark.parametrize("fields,code,message", [
    ([("path", ".")], 100, "not your entire home"),
    ([("path", "/")], 100, "not your entire home"),
    ([("path", "nosuchdir")], 105, "No such file or directory"),
    ([("path", "../bob")], 105, "No such file or directory"),
    ([("path", ".upload-cache")], 100, "cannot be shared"),
    ([], 103, "No path provided"),
    ([("path", "PLACE/f.txt"), ("write_access", "true")], 100, "Individual files"),
    ([("path", "PLACE"), ("read_access", "false")], 102, "No access set"),
    ([("path", "PLACE"), ("expire", "0")], 102, "give 1 to 3650 days"),
    ([("path", "PLACE"), ("expire", "2001-01-01")], 102, "in the past"),
    ([("path", "PLACE"), ("expire", "2030-02-30")], 102, "not a valid date"),
    ([("path", "PLACE"), ("expire", "tomorrow")], 102, "neither a number"),
    ([("path", "PLACE"), ("invite", "not-an-address")], 102, "not an e-mail address"),
    ([("action", "explode"), ("path", "PLACE")], 102, "Invalid action"),
    ([("action", "delete")], 102, "requires existing share link"),
])
def test_create_refusals(grid, alice, home, fields, code, message):
    app, _users = grid
    write(alice, home + "/f.txt", "x")
    os.makedirs(os.path.join(alice["home"], ".upload-cache"), exist_ok=True)
    fields = [(k, v.replace("PLACE", home)) for k, v in fields]
    if not any(k == "action" for k, _v in fields):
        fields.insert(0, ("action", "create"))
    got, body = call(app, "sharelink", fields, alice["token"])
    assert got == code and message in body[0], body


# -- reading through a link --------------------------------------------------------------
def test_read_only_link_is_confined_to_its_folder(grid, alice, home):
    app, _users = grid
    write(alice, home + "/shared/in.txt", "inside")
    write(alice, home + "/shared/sub/deep.txt", "deep")
    write(alice, home + "/secret.txt", "SECRET")
    shared = os.path.join(alice["home"], home, "shared")
    os.symlink("../secret.txt", os.path.join(shared, "up.txt"))  # to the home, out of the share
    os.symlink("/etc/passwd", os.path.join(shared, "abs.txt"))
    os.symlink("..", os.path.join(shared, "parent"))
    os.symlink("sub/deep.txt", os.path.join(shared, "inner.txt"))  # stays inside: fine
    share_id, _body = create(app, alice, home + "/shared", read_access="true")

    assert get(app, share_id, "in.txt") == (200, b"inside")
    assert get(app, share_id, "sub/deep.txt") == (200, b"deep")
    assert get(app, share_id, "inner.txt") == (200, b"deep")
    status, headers, data = request(app, "HEAD", "/share_redirect/%s/in.txt" % share_id)
    assert (status, headers["Content-Length"], data) == (200, "6", b"")
    assert headers["Referrer-Policy"] == "no-referrer"
    for rel in ("../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt", "sub/../../secret.txt",
                "/secret.txt", "//etc/passwd", "up.txt", "abs.txt", "parent/secret.txt",
                "", "sub", "missing.txt"):
        status, data = get(app, share_id, rel)
        assert status == 404 and b"SECRET" not in data and b"root:" not in data, (rel, data)
    status, data = get(app, share_id[:-1] + "A" if share_id[-1] != "A" else share_id[:-1] + "B",
                       "in.txt")
    assert status == 404
    assert get(app, "../cert_redirect", "secret.txt")[0] == 404

    # listing works, and only inside
    code, body = share_call(app, "ls", share_id, [("path", ".")])
    assert code == 0 and "in.txt" in body and "secret.txt" not in body
    code, body = share_call(app, "ls", share_id, [("path", "..")])
    assert code == 0 and "secret.txt" not in body and "in.txt" in body
    code, body = share_call(app, "ls", share_id, [("path", "parent")])
    assert code != 0 and "outside" in body[0]
    code, body = share_call(app, "ls", share_id, [("path", "*")], method="GET")
    assert code == 0 and "secret.txt" not in body
    # a public page: neither the owner's name nor a CSRF token of the owner's
    status, _h, page = request(app, "GET", "/cgi-bin/ls.py?share_id=%s" % share_id)
    assert status == 200 and b"in.txt" in page
    assert b"alice" not in page and b"csrf" not in page.lower()

    # no writing of any kind
    status, reply = put(app, share_id, "new.txt", b"x")
    assert status == 403 and reply.startswith("1\n")
    assert not os.path.exists(os.path.join(shared, "new.txt"))
    code, body = share_call(app, "mkdir", share_id, [("path", "newdir")])
    assert code == 104 and "needs write access" in body[0]
    code, body = share_call(app, "rm", share_id, [("path", "in.txt")])
    assert code == 104 and os.path.exists(os.path.join(shared, "in.txt"))
    code, body = chunked(app, [("action", "put")], [("files[]", "x.txt", b"x")],
                         share_id=share_id)
    assert code == 104
    # backends that take no share_id still need a login
    status, _h, reply = request(app, "POST", "/cgi-bin/cat.py",
                                ("share_id=%s;output_format=txt&path=in.txt" % share_id).encode())
    assert status == 401 and b"authentication required" in reply and b"inside" not in reply


def test_single_file_link_serves_that_file_only(grid, alice, home):
    app, _users = grid
    write(alice, home + "/one.txt", "just me")
    write(alice, home + "/other.txt", "not me")
    share_id, body = create(app, alice, home + "/one.txt")
    assert links_rows(body)[0][2] == "read-only"
    assert links_rows(body)[0][4] == "/share_redirect/%s/one.txt" % share_id
    assert get(app, share_id, "") == (200, b"just me")
    assert get(app, share_id, "one.txt") == (200, b"just me")
    for rel in ("other.txt", "../other.txt", "one.txt/x", "x/one.txt"):
        assert get(app, share_id, rel)[0] == 404, rel
    code, body = share_call(app, "ls", share_id, [("path", ".")])
    assert code == 104 and "single file" in body[0]
    # the shared file replaced by a folder: the link no longer serves anything
    os.unlink(os.path.join(alice["home"], home, "one.txt"))
    os.makedirs(os.path.join(alice["home"], home, "one.txt"))
    assert get(app, share_id, "")[0] == 404


# -- writing through a link -------------------------------------------------------------
def test_write_only_link_is_a_drop_box(grid, alice, home):
    app, _users = grid
    write(alice, home + "/box/existing.txt", "keep me")
    write(alice, home + "/outside.txt", "out")
    box = os.path.join(alice["home"], home, "box")
    os.symlink("..", os.path.join(box, "up"))
    share_id, _body = create(app, alice, home + "/box", write_access="true")

    status, reply = put(app, share_id, "report.txt", b"my report")
    assert (status, reply) == (200, "0\nA 'normal' file was uploaded (report.txt).\n")
    assert read(alice, home + "/box/report.txt") == b"my report"
    status, reply = put(app, share_id, "second.txt", b"two", method="PUT")
    assert status == 200 and reply.startswith("0\n")
    # plain files only: never a job submitted in the owner's name
    status, _h, reply = request(app, "SHAREPUT", "/share_redirect/%s/job.mRSL" % share_id,
                                b"::EXECUTE::\nhostname\n",
                                {"Content-Type": "submitandextract"})
    assert (status, reply) == (200, b"0\nA 'normal' file was uploaded (job.mRSL).\n")
    code, body = call(app, "jobstatus", [], alice["token"])
    assert "Job Id:" not in "\n".join(body), body  # alice has no jobs in this module
    # never replaces, never reads, never lists, never removes
    status, reply = put(app, share_id, "existing.txt", b"overwritten")
    assert status == 200 and reply.startswith("1\n") and "exists already" in reply
    assert read(alice, home + "/box/existing.txt") == b"keep me"
    assert get(app, share_id, "report.txt")[0] == 403
    code, body = share_call(app, "ls", share_id, [("path", ".")])
    assert code == 104 and "needs read access" in body[0]
    for name in ("rm", "rmdir"):
        code, body = share_call(app, name, share_id, [("path", "existing.txt")])
        assert code == 104, (name, body)
    assert read(alice, home + "/box/existing.txt") == b"keep me"
    # only inside the folder
    status, reply = put(app, share_id, "../escape.txt", b"x")
    assert status == 200 and reply.startswith("0\n")  # .. is cut at the shared folder
    assert not os.path.exists(os.path.join(alice["home"], home, "escape.txt"))
    assert os.path.exists(os.path.join(box, "escape.txt"))
    status, reply = put(app, share_id, "up/escape2.txt", b"x")
    assert status == 200 and reply.startswith("1\n") and "outside" in reply
    assert not os.path.exists(os.path.join(alice["home"], home, "escape2.txt"))
    status, reply = put(app, share_id, "nodir/f.txt", b"x")
    assert reply.startswith("1\n") and "invalid directory" in reply
    # folders can be made, state changes need POST
    code, body = share_call(app, "mkdir", share_id, [("path", "sub")])
    assert (code, body) == (0, ["created directory sub"])
    assert os.path.isdir(os.path.join(box, "sub"))
    code, body = share_call(app, "mkdir", share_id, [("path", "sub2")], method="GET")
    assert code == 100 and "use POST" in body[0]
    assert not os.path.exists(os.path.join(box, "sub2"))
    code, body = share_call(app, "mkdir", share_id, [("path", "up/evil")])
    assert code != 0 and not os.path.exists(os.path.join(alice["home"], home, "evil"))
    # chunked upload into the drop box, without credentials; no replacing there either
    code, body = chunked(app, [("action", "put")], [("files[]", "big.bin", b"0123")],
                         share_id=share_id)
    assert code == 0 and body[-1].split() == [
        ".upload-cache/big.bin", "4", "/share_redirect/%s/.upload-cache/big.bin" % share_id]
    code, body = chunked(app, [("action", "move"), ("current_dir", "sub")],
                         [("files[]", "big.bin", b"")], share_id=share_id)
    assert code == 0 and body[-1].split() == [
        "sub/big.bin", "4", "/share_redirect/%s/sub/big.bin" % share_id]
    assert read(alice, home + "/box/sub/big.bin") == b"0123"
    chunked(app, [("action", "put")], [("files[]", "existing.txt", b"new")], share_id=share_id)
    code, body = chunked(app, [("action", "move")], [("files[]", "existing.txt", b"")],
                         share_id=share_id)
    assert code == 100 and "exists already" in body[0]
    assert read(alice, home + "/box/existing.txt") == b"keep me"


def test_read_write_link(grid, alice, home):
    app, _users = grid
    write(alice, home + "/rw/a.txt", "A")
    write(alice, home + "/rw/d/b.txt", "B")
    share_id, _body = create(app, alice, home + "/rw", "true", "true")
    status, reply = put(app, share_id, "a.txt", b"A2")
    assert status == 200 and reply.startswith("0\n")
    assert get(app, share_id, "a.txt") == (200, b"A2")
    # rm moves into the owner's Trash/, out of the link's reach
    code, body = share_call(app, "rm", share_id, [("path", "a.txt")])
    assert (code, body) == (0, ["removed a.txt"])
    assert read(alice, "Trash/a.txt") == b"A2"
    assert not os.path.exists(os.path.join(alice["home"], home, "rw", "Trash"))
    code, body = share_call(app, "rm", share_id, [("path", ".")])
    assert code != 0 and os.path.isdir(os.path.join(alice["home"], home, "rw"))
    code, body = share_call(app, "mkdir", share_id, [("path", "e")])
    code, body = share_call(app, "rmdir", share_id, [("path", "e")])
    assert code == 0 and not os.path.exists(os.path.join(alice["home"], home, "rw", "e"))
    code, body = share_call(app, "ls", share_id, [("path", "d")])
    assert (code, body) == (0, ["b.txt"])


def test_expired_link_is_gone(grid, alice, home):
    app, _users = grid
    write(alice, home + "/old/f.txt", "F")
    share_id, _body = create(app, alice, home + "/old", "true", "true")
    assert get(app, share_id, "f.txt") == (200, b"F")
    expire_now(app, share_id)
    assert get(app, share_id, "f.txt")[0] == 404
    assert put(app, share_id, "g.txt", b"G")[0] == 404
    assert not os.path.exists(os.path.join(alice["home"], home, "old", "g.txt"))
    code, body = share_call(app, "ls", share_id, [("path", ".")])
    assert code == 105 and "expired" in body[0]
    code, body = call(app, "sharelink", [("action", "show")], alice["token"])
    row = [r for r in links_rows(body) if r[0] == share_id][0]
    assert row[4] == "(expired)"
    # the owner can extend it again
    code, body = call(app, "sharelink", [("action", "update"), ("share_id", share_id),
                                         ("expire", "1")], alice["token"])
    assert code == 0 and get(app, share_id, "f.txt") == (200, b"F")


# -- chunked uploads ---------------------------------------------------------------------
def test_uploadchunked_two_chunks_then_move(grid, alice, home):
    app, _users = grid
    token = alice["token"]
    code, body = chunked(app, [("action", "put")], [("files[]", "hello.txt", b"hello ")],
                         token, "bytes 0-5/12")
    assert code == 0
    assert body[0].split() == ["Name", "Size", "URL"]
    assert body[1].split() == [".upload-cache/hello.txt", "6",
                               "/cert_redirect/.upload-cache/hello.txt"]
    code, body = chunked(app, [("action", "put")], [("files[]", "hello.txt", b"world!")],
                         token, "bytes 6-11/12")
    assert code == 0 and body[1].split() == [".upload-cache/hello.txt", "12",
                                             "/cert_redirect/.upload-cache/hello.txt"]
    code, body = chunked(app, [("action", "status")], [], token)
    assert code == 0 and [".upload-cache/hello.txt", "12",
                          "/cert_redirect/.upload-cache/hello.txt"] in [r.split() for r in body]
    code, body = chunked(app, [("action", "move"), ("current_dir", home)],
                         [("files[]", "hello.txt", b"dummy")], token)
    assert code == 0 and body[1].split() == ["%s/hello.txt" % home, "12",
                                             "/cert_redirect/%s/hello.txt" % home]
    assert read(alice, home + "/hello.txt") == b"hello world!"
    assert not os.path.exists(os.path.join(alice["home"], ".upload-cache", "hello.txt"))

    # chunks in any order; the offset field where no Content-Range is sent
    chunked(app, [("action", "put")], [("files[]", "b.bin", b"BBBB")], token, "bytes 4-7/8")
    chunked(app, [("action", "put")], [("files[]", "b.bin", b"AAAA")], token, "bytes 0-3/8")
    chunked(app, [("action", "put"), ("offset", "8")], [("files[]", "b.bin", b"CC")], token)
    assert read(alice, ".upload-cache/b.bin") == b"AAAABBBBCC"
    # a whole file without a range replaces a longer stale one
    chunked(app, [("action", "put")], [("files[]", "b.bin", b"new")], token)
    assert read(alice, ".upload-cache/b.bin") == b"new"
    code, body = chunked(app, [("action", "delete")], [("files[]", "b.bin", b"")], token)
    assert (code, body) == (0, ["removed .upload-cache/b.bin"])
    assert not os.path.exists(os.path.join(alice["home"], ".upload-cache", "b.bin"))


@pytest.mark.parametrize("content_range,fields,message", [
    ("bytes 0-9/12", [], "are 10 bytes but the chunk has 6"),
    ("bytes 5-2/12", [], "before the first"),
    ("bytes 10-15/12", [], "past the total"),
    ("bytes=0-5", [], "expected 'bytes FIRST-LAST/TOTAL'"),
    ("bytes -1-4/12", [], "expected 'bytes FIRST-LAST/TOTAL'"),
    ("bytes 999999999999-1000000000004/*", [], "files may be at most"),
    (None, [("offset", "-3")], "expected a whole number"),
    (None, [("action", "explode")], "Invalid action"),
])
def test_uploadchunked_refusals(grid, alice, content_range, fields, message):
    app, _users = grid
    code, body = chunked(app, [("action", "put")] + fields, [("files[]", "r.txt", b"123456")],
                         alice["token"], content_range)
    assert code != 0 and message in "\n".join(body), body


def test_uploadchunked_names_and_links_stay_inside(grid, alice, home):
    app, _users = grid
    token = alice["token"]
    code, body = chunked(app, [("action", "put")], [("files[]", "../../evil.txt", b"e")], token)
    assert code == 0 and body[1].split()[0] == ".upload-cache/evil.txt"
    for bad in ("..", ".htaccess"):
        code, body = chunked(app, [("action", "put")], [("files[]", bad, b"e")], token)
        assert code == 102 and "invalid filename" in body[0]
    code, body = chunked(app, [("action", "move"), ("current_dir", "../..")],
                         [("files[]", "evil.txt", b"")], token)
    assert code == 0 and read(alice, "evil.txt") == b"e"  # .. stops at the home
    os.symlink(os.path.join(alice["home"], home, "target.txt"),
               os.path.join(alice["home"], ".upload-cache", "linked.txt"))
    code, body = chunked(app, [("action", "put")], [("files[]", "linked.txt", b"x")], token)
    assert code == 100 and not os.path.exists(os.path.join(alice["home"], home, "target.txt"))
    code, body = chunked(app, [("action", "move")], [], token)
    assert code == 100 and "No files" in body[0]


# -- byte ranges ---------------------------------------------------------------------------
def test_rangefileaccess_get_and_put(grid, alice, home):
    app, _users = grid
    token = alice["token"]
    write(alice, home + "/r.txt", "0123456789abcdef")
    query = "output_format=txt&flags=&path=%s/r.txt" % home
    status, headers, data = request(
        app, "GET", "/cgi-bin/rangefileaccess.py?%s&file_startpos=5&file_endpos=9" % query,
        token=token)
    assert (status, data) == (200, b"56789")
    assert headers["Content-Type"] == "application/octet-stream"
    status, _h, data = request(app, "GET", "/cgi-bin/rangefileaccess.py?%s&file_startpos=12"
                               % query, token=token)
    assert (status, data) == (200, b"cdef")
    status, _h, data = request(app, "GET", "/cgi-bin/rangefileaccess.py?%s&file_endpos=999"
                               % query, token=token)
    assert data == b"0123456789abcdef"

    status, _h, reply = request(app, "PUT", "/cgi-bin/rangefileaccess.py?%s&file_startpos=4"
                                % query, b"XYZ", token=token)
    assert status == 200
    assert txt(reply) == (0, ["Wrote 3 bytes to %s/r.txt at offset 4" % home])
    assert read(alice, home + "/r.txt") == b"0123XYZ789abcdef"
    # past the end extends; file_endpos limits what is taken from the body
    status, _h, reply = request(app, "PUT", "/cgi-bin/rangefileaccess.py?%s&file_startpos=16"
                                "&file_endpos=17" % query, b"ghij", token=token)
    assert txt(reply) == (0, ["Wrote 2 bytes to %s/r.txt at offset 16" % home])
    assert read(alice, home + "/r.txt") == b"0123XYZ789abcdefgh"
    # a new file is created; a form POST only reads
    status, _h, reply = request(app, "PUT", "/cgi-bin/rangefileaccess.py?output_format=txt&"
                                "path=%s/new.bin" % home, b"\x00\x01", token=token)
    assert txt(reply)[0] == 0 and read(alice, home + "/new.bin") == b"\x00\x01"
    status, _h, data = request(app, "POST", "/cgi-bin/rangefileaccess.py",
                               ("output_format=txt&path=%s/r.txt&file_endpos=1" % home).encode(),
                               {"Content-Type": "application/x-www-form-urlencoded"}, token)
    assert data == b"01" and read(alice, home + "/r.txt") == b"0123XYZ789abcdefgh"
    # no credentials, no access
    status, _h, _data = request(app, "GET", "/cgi-bin/rangefileaccess.py?%s" % query)
    assert status == 401


@pytest.mark.parametrize("method,query,code,message", [
    ("GET", "file_startpos=-1", 102, "must not be negative"),
    ("GET", "file_endpos=-5", 102, "must not be negative"),
    ("PUT", "file_startpos=-1", 102, "must not be negative"),
    ("GET", "file_startpos=9&file_endpos=5", 102, "is before file_startpos"),
    ("PUT", "file_startpos=9&file_endpos=5", 102, "is before file_startpos"),
    ("GET", "file_startpos=0&file_endpos=1073741824", 102, "more than the 1073741824 bytes"),
    ("GET", "file_startpos=16", 100, "past the end"),
    ("GET", "file_startpos=abc", 102, "whole number"),
    ("PUT", "file_startpos=99999999999999", 102, "larger than the"),
    ("GET", "path=DIR", 100, "is a directory"),
    ("PUT", "path=DIR", 100, "is a directory"),
    ("GET", "path=DIR/nope.txt", 105, "No such file"),
    ("PUT", "path=DIR/nodir/x.txt", 100, "invalid directory"),
])
def test_rangefileaccess_refusals(grid, alice, home, method, query, code, message):
    app, _users = grid
    write(alice, home + "/r.txt", "0123456789abcdef")
    base = "output_format=txt&path=%s/r.txt" % home
    if "path=" in query:
        base, query = "output_format=txt", query.replace("DIR", home)
    status, _h, reply = request(app, method, "/cgi-bin/rangefileaccess.py?%s&%s"
                                % (base, query), b"xy" if method == "PUT" else b"",
                                token=alice["token"])
    got, body = txt(reply)
    assert status == 200 and got == code and message in body[0], body
    assert read(alice, home + "/r.txt") == b"0123456789abcdef"


def test_rangefileaccess_stays_in_the_home(grid, alice, home):
    app, _users = grid
    os.symlink("/etc", os.path.join(alice["home"], home, "etc"))
    for method, path in (("GET", "etc/passwd"), ("PUT", "etc/evil"), ("GET", "../bob/x")):
        status, _h, reply = request(app, method, "/cgi-bin/rangefileaccess.py?output_format=txt"
                                    "&path=%s/%s" % (home, path), b"x", token=alice["token"])
        assert status == 200 and b"root:" not in reply
        assert txt(reply)[0] != 0
    assert not os.path.exists("/etc/evil")


# -- the documented examples ----------------------------------------------------------------
def test_documented_curl_examples_run(grid, alice, tmp_path):
    """Every sh block of docs/sharelinks.md, in order, with alice's certificate."""
    require_tool("curl", "apt-get install curl")
    require_tool("bash", "apt-get install bash")
    app, _users = grid
    for name in ("results", "inbox"):
        shutil.rmtree(os.path.join(alice["home"], name), ignore_errors=True)
    with open(os.path.join(DOCS, "sharelinks.md"), encoding="utf-8") as handle:
        blocks = re.findall(r"^```sh\n(.*?)^```", handle.read(), re.S | re.M)
    assert len(blocks) >= 6
    script = "set -euo pipefail\n" + "".join("printf '\\n=== block %d\\n'\n%s" % (i, block)
                                              for i, block in enumerate(blocks))
    env = dict(os.environ, URL=app.url,
               MIG="curl -sS --cacert %s --cert %s --key %s" % (app.ca, alice["cert"],
                                                                 alice["key"]),
               ANON="curl -sS --cacert %s" % app.ca)
    result = subprocess.run(["bash", "-c", script], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    out = {number: text.rstrip("\n") for number, text in re.findall(
        r"^=== block (\d+)\n(.*?)(?=^=== block |\Z)", result.stdout, re.S | re.M)}
    assert "Created share link" in out["0"] and "read-only" in out["0"]
    assert re.search(r"^\S{32}\s+results\s+read-only\s", out["1"], re.M)
    assert out["2"].startswith("hello from alice\n") and "summary.txt" in out["2"]
    assert "A 'normal' file was uploaded (report.txt)." in out["3"] and \
        out["3"].endswith("\n403")
    assert "Deleted share link" in out["4"] and out["4"].endswith("\n404")
    moved = out["5"].split("\n")[-2].split()  # the move reply's row, then the file
    assert moved == ["results/hello.txt", "12", "/cert_redirect/results/hello.txt"]
    assert out["5"].endswith("\nhello world!")
    assert out["6"].startswith("world\n") and out["6"].endswith("HELLO world!")
    assert read(alice, "results/hello.txt") == b"HELLO world!"
    assert read(alice, "inbox/report.txt") == b"my report\n"
    drop = [r for r in links_rows(call(app, "sharelink", [("action", "show")],
                                       alice["token"])[1]) if r[1] == "inbox"][0][0]
    code, body = call(app, "sharelink", [("action", "edit"), ("share_id", drop)],
                      alice["token"])
    assert "Invited: bob@example.org" in body and "Message: Please upload your report" in body
