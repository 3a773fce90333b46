"""The Files pages, uploads, file actions, the editor and the web shell,
against a real appliance process over HTTPS with a client certificate."""

import io
import json
import os
import re
import urllib.parse
import uuid
import zipfile
from html.parser import HTMLParser

import pytest

from conftest import exit_code, https_connection

XSS = "<img src=x onerror=alert(1)>.txt"
JOB = "::EXECUTE::\necho hello from the shell\n"
SCRIPT = {"User-Agent": "curl/8"}


@pytest.fixture
def grid(alice_conn):
    return alice_conn


def request(conn, method, path, body=b"", headers=None):
    conn.request(method, path, body=body, headers=dict(SCRIPT, **(headers or {})))
    resp = conn.getresponse()
    return resp.status, resp.read().decode("utf-8", "replace")


def call(conn, name, fields, fmt="txt"):
    """POST a backend the way scripts do (no CSRF token needed)."""
    body = urllib.parse.urlencode(list(fields) + [("output_format", fmt)])
    status, text = request(conn, "POST", "/cgi-bin/%s.py" % name, body,
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, text
    return json.loads(text) if fmt == "json" else text


def page(conn, name, **query):
    """GET a portal page as html."""
    status, text = request(conn, "GET", "/cgi-bin/%s.py?%s" % (name, urllib.parse.urlencode(query)))
    assert status == 200, text
    return text


def multipart(fields, files):
    """A multipart/form-data body: fields [(name, value)], files [(name, filename, bytes)]."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                   % (boundary, name, value)).encode("utf-8"))
    for name, filename, data in files:
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n"
                   % (boundary, name, filename)).encode("utf-8"))
        out.write(data + b"\r\n")
    out.write(("--%s--\r\n" % boundary).encode("ascii"))
    return out.getvalue(), "multipart/form-data; boundary=%s" % boundary


def upload(conn, files, fmt="txt", **fields):
    body, ctype = multipart([(k, v) for k, v in fields.items()] + [("output_format", fmt)],
                            [("files", name, data) for name, data in files])
    status, text = request(conn, "POST", "/cgi-bin/upload.py", body, {"Content-Type": ctype})
    assert status == 200, text
    return text


class Links(HTMLParser):
    """Collects hrefs with their link text, checkbox values and the page's text."""

    def __init__(self):
        super().__init__()
        self.links, self.checkboxes, self.text, self._href = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self._href = attrs.get("href")
            self.links.append([self._href, ""])
        if tag == "input" and attrs.get("type") == "checkbox" and attrs.get("name") == "path":
            self.checkboxes.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        self.text.append(data)
        if self._href is not None:
            self.links[-1][1] += data


def parse(html):
    parser = Links()
    parser.feed(html)
    return parser


def shell(conn, command, cwd="."):
    objects = call(conn, "shellcmd", [("command", command), ("cwd", cwd)], "json")
    outputs = [o for o in objects if o["object_type"] == "shell_output"]
    assert len(outputs) == 1, objects
    return outputs[0]["text"], outputs[0]["cwd"]


def job_ids(text):
    return re.findall(r"\b\d+_\d+_\d+_\d{4}_\d+_\d+_\d+\b|\b[0-9a-f_]{20,}\b", text)


# -- upload and the listing --------------------------------------------------------------------
def test_upload_two_files_in_one_request_and_list_them_escaped(grid):
    app, alice, conn = grid
    reply = upload(conn, [("one.txt", b"first\n"), (XSS, b"<script>alert(1)</script>")])
    assert exit_code(reply) == 0, reply
    assert reply.count("uploaded") == 2
    home = alice["home"]
    assert open(os.path.join(home, "one.txt"), "rb").read() == b"first\n"
    assert open(os.path.join(home, XSS), "rb").read() == b"<script>alert(1)</script>"

    html = page(conn, "fileman")
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in html
    assert "<img src=x" not in html
    parsed = parse(html)
    assert set(parsed.checkboxes) >= {"one.txt", XSS}
    names = {text: href for href, text in parsed.links}
    assert names["one.txt"] == "/cert_redirect/one.txt"
    assert names[XSS] == "/cert_redirect/" + urllib.parse.quote(XSS)
    assert "/cgi-bin/viewfile.py?path=one.txt" in [href for href, _ in parsed.links]
    # the download link serves the file, sandboxed
    conn.request("GET", names[XSS], headers=SCRIPT)
    resp = conn.getresponse()
    assert resp.read() == b"<script>alert(1)</script>"
    assert "sandbox" in resp.getheader("Content-Security-Policy")
    # the page has the upload form (multipart, progress) and the folder form
    assert 'enctype="multipart/form-data"' in html and "data-upload" in html
    assert 'name="files"' in html and "multiple" in html
    assert 'action="/cgi-bin/mkdir.py"' in html and 'action="/cgi-bin/fileaction.py"' in html


def test_upload_into_folder_refusals_and_breadcrumbs(grid):
    app, alice, conn = grid
    os.makedirs(os.path.join(alice["home"], "data", "in"))
    reply = upload(conn, [("a.txt", b"a"), ("..", b"x"), ("in", b"dir in the way"),
                          ("sub/x.txt", b"x")], dir="data")
    assert exit_code(reply) != 0, reply
    assert open(os.path.join(alice["home"], "data", "a.txt")).read() == "a"
    assert reply.count("failed") == 3, reply
    assert "directory in the way" in reply
    assert sorted(os.listdir(os.path.join(alice["home"], "data"))) == ["a.txt", "in"]
    reply = upload(conn, [("a.txt", b"replaced")], dir="data")
    assert exit_code(reply) == 0 and open(os.path.join(alice["home"], "data", "a.txt")).read() \
        == "replaced"
    long_name = "n" * 250 + ".txt"
    assert exit_code(upload(conn, [(long_name, b"long")], dir="data")) == 0
    assert open(os.path.join(alice["home"], "data", long_name)).read() == "long"
    os.unlink(os.path.join(alice["home"], "data", long_name))
    reply = upload(conn, [("a.txt", b"x")], dir="missing")
    assert exit_code(reply) == 105, reply
    body, ctype = multipart([("output_format", "txt")], [])
    _status, reply = request(conn, "POST", "/cgi-bin/upload.py", body, {"Content-Type": ctype})
    assert exit_code(reply) == 100 and "no files were uploaded" in reply
    # fileman of a subfolder: breadcrumbs and links into folders
    parsed = parse(page(conn, "fileman", path="data"))
    links = [(href, text) for href, text in parsed.links]
    assert ("/cgi-bin/fileman.py?path=.", "Home") in links
    assert ("/cgi-bin/fileman.py?path=data", "data") in links
    assert ("/cgi-bin/fileman.py?path=data%2Fin", "in/") in links
    assert parsed.checkboxes == ["data/in", "data/a.txt"]
    # a state-changing backend refuses GET
    _status, reply = request(conn, "GET", "/cgi-bin/upload.py?output_format=txt")
    assert "changes state: use POST" in reply


def test_upload_size_limit(appliance_factory):
    app = appliance_factory()
    alice = app.add_user("alice")
    ini = os.path.join(app.state, "config.ini")
    text = open(ini).read()
    open(ini, "w").write(re.sub(r"max_upload_mb = \d+", "max_upload_mb = 1", text))
    app.start()
    conn = https_connection(app, alice)
    reply = upload(conn, [("a.bin", b"a" * 600000), ("b.bin", b"b" * 600000)])
    assert exit_code(reply) == 100 and "at most 1 MB" in reply, reply
    assert not os.path.exists(os.path.join(alice["home"], "a.bin"))
    assert exit_code(upload(conn, [("a.bin", b"a" * 600000)])) == 0
    conn.close()


def test_upload_extract_and_submit(grid):
    app, alice, conn = grid
    home = alice["home"]
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("project/input.txt", "input\n")
        zf.writestr("project/job.mRSL", JOB)
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("fine.txt", "fine")
        zf.writestr("../evil.txt", "evil")
    os.mkdir(os.path.join(home, "in"))
    reply = upload(conn, [("good.zip", good.getvalue()), ("evil.zip", evil.getvalue()),
                          ("single.MRSL", JOB.encode())], dir="in", extract="true",
                   submit="true")
    assert exit_code(reply) == 100, reply
    assert "unpacked 2 files into in" in reply
    assert "points outside the destination folder; nothing was unpacked" in reply
    assert open(os.path.join(home, "in", "project", "input.txt")).read() == "input\n"
    # the refused archive is kept as uploaded, but nothing of it was unpacked
    assert os.path.isfile(os.path.join(home, "in", "evil.zip"))
    assert not os.path.exists(os.path.join(home, "in", "fine.txt"))
    for folder in (home, os.path.dirname(home), os.path.join(home, "in")):
        assert "evil.txt" not in os.listdir(folder)
    # both mRSL files (the uploaded one and the unpacked one) became jobs
    submitted = re.findall(r"^(\S+\.(?:mRSL|MRSL))\s+1\s+(\S+)", reply, re.M)
    assert sorted(name for name, _ in submitted) == ["in/project/job.mRSL", "in/single.MRSL"]
    status = call(conn, "jobstatus", [])
    for _name, job_id in submitted:
        assert "Job Id: %s" % job_id in status
    # without extract an archive is just a file
    reply = upload(conn, [("plain.zip", good.getvalue())])
    assert exit_code(reply) == 0 and not os.path.exists(os.path.join(home, "project"))


# -- delete, copy, move, rename ------------------------------------------------------------------
def test_delete_copy_move_rename(grid):
    app, alice, conn = grid
    home = alice["home"]
    os.makedirs(os.path.join(home, "src", "deep"))
    for name, text in (("a.txt", "A"), ("b.txt", "B"), ("src/deep/c.txt", "C")):
        with open(os.path.join(home, name), "w") as handle:
            handle.write(text)
    os.mkdir(os.path.join(home, "dest"))

    reply = call(conn, "fileaction", [("action", "delete"), ("path", "b.txt")])
    assert exit_code(reply) == 0 and "moved to Trash" in reply, reply
    assert not os.path.exists(os.path.join(home, "b.txt"))
    assert open(os.path.join(home, "Trash", "b.txt")).read() == "B"
    reply = call(conn, "fileaction", [("action", "delete"), ("path", "Trash/b.txt")])
    assert "deleted" in reply and not os.path.exists(os.path.join(home, "Trash", "b.txt"))

    reply = call(conn, "fileaction", [("action", "copy"), ("path", "a.txt"), ("path", "src"),
                                      ("dst", "dest")])
    assert exit_code(reply) == 0, reply
    assert open(os.path.join(home, "dest", "a.txt")).read() == "A"
    assert open(os.path.join(home, "dest", "src", "deep", "c.txt")).read() == "C"
    assert os.path.exists(os.path.join(home, "a.txt"))

    reply = call(conn, "fileaction", [("action", "move"), ("path", "a.txt"), ("dst", "moved.txt")])
    assert exit_code(reply) == 0 and "moved to moved.txt" in reply, reply
    assert not os.path.exists(os.path.join(home, "a.txt"))
    assert open(os.path.join(home, "moved.txt")).read() == "A"

    reply = call(conn, "fileaction", [("action", "move"), ("path", "moved.txt"), ("path", "src"),
                                      ("dst", "moved.txt")])
    assert exit_code(reply) == 100 and "several items can only go into a folder" in reply
    reply = call(conn, "fileaction", [("action", "move"), ("path", "src"), ("dst", "src/deep")])
    assert exit_code(reply) == 100 and "into itself" in reply
    reply = call(conn, "fileaction", [("action", "copy"), ("path", "../../etc/passwd"),
                                      ("dst", "dest")])
    assert exit_code(reply) == 105, reply
    reply = call(conn, "fileaction", [("action", "shred"), ("path", "moved.txt")])
    assert exit_code(reply) == 100 and "unknown action" in reply

    # copy or move from the selection without a destination asks for one (plain html form)
    html = page(conn, "filemove", path="moved.txt", mode="rename")
    assert 'action="/cgi-bin/fileaction.py"' in html
    assert 'name="action" value="move"' in html and 'name="dst"' in html
    assert 'name="path" value="moved.txt"' in html
    # a POST a browser sent (it says so: Sec-Fetch-Site, as every browser
    # does) without a CSRF token is refused, whatever its User-Agent says
    for marker in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        status, text = request(conn, "POST", "/cgi-bin/fileaction.py",
                               "action=delete&path=moved.txt",
                               dict(marker, **{"Content-Type": "application/x-www-form-urlencoded",
                                               "User-Agent": "curl/8"}))
        assert "CSRF" in text and os.path.exists(os.path.join(home, "moved.txt"))
    objects = call(conn, "fileaction", [("action", "copy"), ("path", "moved.txt"),
                                        ("path", "src")], "json")
    form = [o for o in objects if o["object_type"] == "form"][0]
    assert form["action"] == "fileaction"
    assert [f["value"] for f in form["fields"] if f["name"] == "path"] == ["moved.txt", "src"]


def test_cp_and_mv_in_mig_wire_format(grid):
    app, alice, conn = grid
    home = alice["home"]
    os.makedirs(os.path.join(home, "d", "e"))
    for name in ("x1.txt", "x2.txt", "d/e/f.txt"):
        open(os.path.join(home, name), "w").write(name)
    reply = call(conn, "cp", [("src", "x*.txt"), ("dst", "d"), ("flags", "v")])
    assert exit_code(reply) == 0 and "x1.txt -> d/x1.txt" in reply, reply
    assert sorted(os.listdir(os.path.join(home, "d"))) == ["e", "x1.txt", "x2.txt"]
    reply = call(conn, "cp", [("src", "x*.txt"), ("dst", "new.txt")])
    assert exit_code(reply) == 100 and "several sources" in reply, reply
    reply = call(conn, "cp", [("src", "x1*"), ("dst", "one.txt")])
    assert exit_code(reply) == 0 and open(os.path.join(home, "one.txt")).read() == "x1.txt"
    reply = call(conn, "cp", [("src", "d"), ("dst", "d2")])
    assert exit_code(reply) == 100 and "is a folder" in reply
    reply = call(conn, "cp", [("src", "d"), ("dst", "d2"), ("flags", "r")])
    assert exit_code(reply) == 0 and os.path.isfile(os.path.join(home, "d2", "e", "f.txt"))
    reply = call(conn, "cp", [("src", "nothing*"), ("dst", "d")])
    assert exit_code(reply) == 105 and "nothing*: No such file or directory" in reply
    assert exit_code(call(conn, "cp", [("src", "nothing"), ("dst", "d"), ("flags", "f")])) == 0
    reply = call(conn, "mv", [("src", "x1.txt"), ("src", "x2.txt"), ("dst", "d/e")])
    assert exit_code(reply) == 0, reply
    assert sorted(os.listdir(os.path.join(home, "d", "e"))) == ["f.txt", "x1.txt", "x2.txt"]
    reply = call(conn, "mv", [("src", "d/e/x1.txt"), ("dst", "renamed.txt")])
    assert exit_code(reply) == 0 and open(os.path.join(home, "renamed.txt")).read() == "x1.txt"
    reply = call(conn, "mv", [("src", "renamed.txt")])
    assert exit_code(reply) == 102 and "missing required field: dst" in reply


# -- editor, editfile, viewfile ------------------------------------------------------------------
def test_editor_save_submit_and_view(grid):
    app, alice, conn = grid
    home = alice["home"]
    html = page(conn, "editor", path="jobs/new.mRSL")
    assert "does not exist yet" in html and 'action="/cgi-bin/editfile.py"' in html
    reply = call(conn, "editfile", [("path", "jobs/new.mRSL"), ("editarea", JOB)])
    assert exit_code(reply) == 100 and "invalid directory" in reply, reply
    os.mkdir(os.path.join(home, "jobs"))
    reply = call(conn, "editfile", [("path", "jobs/new.mRSL"),
                                    ("editarea", JOB.replace("\n", "\r\n")),
                                    ("submitjob", "true")])
    assert exit_code(reply) == 0, reply
    assert "Saved %d bytes to jobs/new.mRSL" % len(JOB) in reply
    job_id = re.search(r"^jobs/new\.mRSL\s+1\s+(\S+)", reply, re.M).group(1)
    assert "Job Id: %s" % job_id in call(conn, "jobstatus", [("job_id", job_id)])
    assert open(os.path.join(home, "jobs", "new.mRSL"), newline="").read() == JOB

    call(conn, "editfile", [("path", "win.txt"), ("editarea", "a\nb\n"), ("newline", "windows")])
    assert open(os.path.join(home, "win.txt"), "rb").read() == b"a\r\nb\r\n"
    call(conn, "editfile", [("path", "x.html"), ("editarea", "</textarea><script>x</script>")])
    html = page(conn, "editor", path="x.html")
    assert "&lt;/textarea&gt;&lt;script&gt;x&lt;/script&gt;</textarea>" in html
    open(os.path.join(home, "bin.dat"), "wb").write(b"\x00\x01binary")
    assert "binary file" in page(conn, "editor", path="bin.dat")
    reply = call(conn, "editfile", [("path", "big.txt"), ("editarea", "x" * (2 * 1024 * 1024 + 1))])
    assert exit_code(reply) == 100 and "at most 2 MB" in reply

    html = page(conn, "viewfile", path="jobs/new.mRSL")
    assert "echo hello from the shell" in html and "<pre>" in html
    assert 'action="/cgi-bin/submit.py"' in html  # the Submit this job button
    assert "binary file" in page(conn, "viewfile", path="bin.dat")
    open(os.path.join(home, "pic.png"), "wb").write(b"\x89PNG\r\n\x1a\n")
    assert '<img src="/cert_redirect/pic.png"' in page(conn, "viewfile", path="pic.png")
    open(os.path.join(home, "vec.svg"), "w").write("<svg onload='alert(1)'/>")
    html = page(conn, "viewfile", path="vec.svg")
    assert "<img" not in html and "<svg" not in html and "download" in html.lower()
    assert 'href="/cert_redirect/vec.svg"' in html


# -- the web shell ----------------------------------------------------------------------------
def test_shell_page_and_commands(grid):
    app, alice, conn = grid
    home = alice["home"]
    html = page(conn, "shell")
    assert 'id="shell-form"' in html and "help" in html

    assert shell(conn, "pwd") == ("/\n", ".")
    text, cwd = shell(conn, "mkdir -p work/sub")
    assert cwd == "." and os.path.isdir(os.path.join(home, "work", "sub")), text
    text, cwd = shell(conn, "cd work")
    assert (text, cwd) == ("", "work")
    assert shell(conn, "pwd", cwd) == ("/work\n", "work")
    open(os.path.join(home, "work", "job.mRSL"), "w").write(JOB)
    open(os.path.join(home, "work", "notes file.txt"), "w").write("".join(
        "note %d\n" % i for i in range(1, 21)))
    text, _ = shell(conn, "ls", cwd)
    assert text.split("\n") == ["job.mRSL", "notes file.txt", "sub/", ""]
    text, _ = shell(conn, "ls -l sub", cwd)
    assert text == ""
    text, _ = shell(conn, "cat 'notes file.txt'", cwd)
    assert text.startswith("note 1\nnote 2\n") and text.endswith("note 20\n")
    assert shell(conn, "head -n 2 'notes file.txt'", cwd)[0] == "note 1\nnote 2\n"
    assert shell(conn, "tail -n2 notes\\ file.txt", cwd)[0] == "note 19\nnote 20\n"
    assert shell(conn, "cd ../../..", cwd) == ("", ".")
    assert shell(conn, "cd /work/sub", cwd) == ("", "work/sub")
    text, cwd2 = shell(conn, "cd job.mRSL", cwd)
    assert text == "error: cd: job.mRSL: not a folder\n" and cwd2 == "work"
    text, _ = shell(conn, "cat missing.txt", cwd)
    assert text == "error: work/missing.txt: No such file or directory\n"

    text, _ = shell(conn, "submit job.mRSL", cwd)
    job_id = re.search(r"^work/job\.mRSL\s+1\s+(\S+)", text, re.M).group(1)
    text, _ = shell(conn, "status %s" % job_id, cwd)
    assert "Job Id: %s" % job_id in text and "Status: " in text
    assert "Job Id: %s" % job_id in shell(conn, "status")[0]

    text, _ = shell(conn, "cp job.mRSL copy.mRSL", cwd)
    assert text == "" and os.path.isfile(os.path.join(home, "work", "copy.mRSL"))
    shell(conn, "mv copy.mRSL sub", cwd)
    assert os.path.isfile(os.path.join(home, "work", "sub", "copy.mRSL"))
    text, _ = shell(conn, "rm sub", cwd)
    assert "is a directory" in text
    shell(conn, "rm -r sub", cwd)
    assert os.path.isdir(os.path.join(home, "Trash", "sub"))

    assert shell(conn, "frobnicate x") == ("unknown command frobnicate; try help\n", ".")
    assert shell(conn, "cat 'unclosed")[0] == "error: No closing quotation\n"
    assert shell(conn, "ls -z")[0].startswith("error: ls: option -z not recognized")
    assert shell(conn, "cancel")[0] == "error: cancel: missing a job id; try help\n"
    assert "cancel" in shell(conn, "help")[0]
    assert shell(conn, "")[0] == ""
    # a folder that vanished sends the console home
    text, cwd = shell(conn, "pwd", "gone")
    assert cwd == "." and text.startswith("error: ") and text.endswith("/\n")
    # big output is cut
    open(os.path.join(home, "big.txt"), "w").write("z" * (3 * 1024 * 1024))
    text, _ = shell(conn, "cat big.txt")
    assert len(text) < 1024 * 1024 + 200 and "output cut at 1 MB" in text
    # paths stay in the home
    text, _ = shell(conn, "cat ../../../../etc/passwd")
    assert "root:" not in text and text.startswith("error: ")
