"""MiG's file backends on the wire, as its curl user scripts use them.

Requests are sent exactly like the generated scripts send them (a raw
``_=certauth;output_format=txt&flags=..`` piece with the raw fields, then
url-encoded fields), against a real appliance; the asserts are on the txt
body lines the scripts (and people) read: exit code first, then the lines
after the ``Title`` / ``___HEADER___`` block.
"""

import hashlib
import io
import os
import re
import sys
import tarfile
import zipfile

import pytest

from conftest import ENTRY, Appliance, exit_code, require_tool, wait_for
from conftest import write_home_file as write

PREFIX = "_=certauth;output_format=txt"


@pytest.fixture(scope="module")
def wire(tmp_path_factory):
    """One appliance for the module, with alice (a fresh folder per test under her home)."""
    require_tool("curl", "apt-get install curl")
    app = Appliance([sys.executable, ENTRY], str(tmp_path_factory.mktemp("wire") / "state"))
    alice = app.add_user("alice")
    app.start()
    yield app, alice
    app.stop()
    app.remove_work_folder()


@pytest.fixture
def home(wire, request):
    """A test's own folder in alice's home (every path below is relative to the home)."""
    _app, alice = wire
    name = re.sub(r"[^A-Za-z0-9]", "", request.node.name)
    os.makedirs(os.path.join(alice["home"], name))
    return name


def call(wire, name, fields=(), flags="", raw=""):
    """(exit code, body lines) of a script-style POST; checks the header block."""
    app, alice = wire
    reply = app.backend(alice, name, list(fields),
                        raw_prefix="%s&flags=%s%s" % (PREFIX, flags, raw))
    lines = reply.split("\n")
    assert lines[1].startswith("Title: ") and lines[2] == "" and lines[4] == "", reply
    assert re.match(r"^___.+___$", lines[3]), reply
    body = lines[5:]
    if body and body[-1] == "":
        body.pop()  # the newline that ends the last line
    return exit_code(reply), body


def paths(*values, name="path"):
    return [(name, v) for v in values]


# -- expand (migget) ------------------------------------------------------------------
def test_expand_lines_are_what_migget_parses(wire, home):
    app, alice = wire
    for rel in ("a.txt", "b.txt", ".hidden.txt", "d/e.txt", "d/sub/c.txt"):
        write(alice, "%s/%s" % (home, rel), rel)
    code, body = call(wire, "expand", paths(home + "/*.txt") + [("with_dest", "true")])
    assert code == 0
    assert body == ["%s/a.txt    ::    a.txt" % home, "%s/b.txt    ::    b.txt" % home]
    # python migget skips exactly three non-empty lines (status, title, header)
    reply = app.backend(alice, "expand", paths(home + "/*.txt") + [("with_dest", "true")],
                        raw_prefix=PREFIX + "&flags=")
    assert [line for line in reply.splitlines() if line][3:] == body

    code, body = call(wire, "expand", paths(home + "/d") + [("with_dest", "true")])
    assert (code, body) == (0, ["%s/d/e.txt    ::    e.txt" % home])
    code, body = call(wire, "expand", paths(home + "/d") + [("with_dest", "true")], flags="r")
    assert (code, body) == (0, ["%s/d/e.txt    ::    d/e.txt" % home,
                                "%s/d/sub/c.txt    ::    d/sub/c.txt" % home])
    code, body = call(wire, "expand", paths(home + "/d"), flags="r")
    assert (code, body) == (0, ["%s/d/e.txt" % home, "%s/d/sub/c.txt" % home])
    code, body = call(wire, "expand", paths(home + "/.h*") + [("with_dest", "true")],
                      flags="a")
    assert (code, body) == (0, ["%s/.hidden.txt    ::    .hidden.txt" % home])

    code, body = call(wire, "expand", paths(home + "/nope*") + [("with_dest", "true")])
    assert (code, body) == (105, ["%s/nope*: No such file or directory" % home])


# -- reading ----------------------------------------------------------------------------
def test_statpath_prints_eleven_key_value_lines(wire, home):
    _app, alice = wire
    local = write(alice, home + "/s.txt", "12345")
    code, body = call(wire, "statpath", paths(home + "/s.txt"))
    info = os.stat(local)
    assert code == 0
    assert [line.split("\t")[0] for line in body] == [
        "device", "inode", "mode", "nlink", "uid", "gid", "rdev", "size", "atime", "mtime",
        "ctime"]
    values = dict(line.split("\t") for line in body)
    assert values["mode"] == str(info.st_mode) and values["size"] == "5"
    assert values["inode"] == str(info.st_ino)
    assert float(values["mtime"]) == pytest.approx(info.st_mtime)
    code, body = call(wire, "statpath", paths(home + "/gone.txt"))
    assert (code, body) == (105, ["%s/gone.txt: No such file or directory" % home])


def test_chksum_md5_sha1_sha256_and_max_chunks(wire, home):
    _app, alice = wire
    data = bytes(range(256)) * 160  # 40960 bytes: two chunks of 32 KB
    write(alice, home + "/blob.bin", data)
    rel = home + "/blob.bin"
    for algo in ("md5", "sha1", "sha256", "sha512"):
        code, body = call(wire, "chksum", paths(rel), raw="&hash_algo=%s" % algo)
        assert (code, body) == (0, ["%s %s" % (hashlib.new(algo, data).hexdigest(), rel)])
    code, body = call(wire, "chksum", paths(rel), raw="&hash_algo=md5&max_chunks=1")
    assert (code, body) == (0, ["%s (of first 32768 bytes) %s"
                                % (hashlib.md5(data[:32768]).hexdigest(), rel)])
    code, body = call(wire, "chksum", paths(rel), raw="&hash_algo=crc32")
    assert code == 102 and "unknown hash_algo crc32" in body[0]


def test_grep_prints_matching_lines_and_refuses_bad_patterns(wire, home):
    _app, alice = wire
    write(alice, home + "/g1.txt", "alpha\nbeta 42\ngamma\n")
    write(alice, home + "/g2.txt", "delta 7\nno digits")
    code, body = call(wire, "grep", paths(home + "/g*.txt") + [("pattern", r"[0-9]+$")])
    assert (code, body) == (0, ["beta 42", "delta 7"])
    code, body = call(wire, "grep", paths(home + "/g1.txt") + [("pattern", "a(")])
    assert code == 100
    assert body[0].startswith("** invalid pattern 'a(': missing ), unterminated subpattern")


def test_head_and_tail_lines(wire, home):
    _app, alice = wire
    write(alice, home + "/n.txt", "".join("line %d\n" % n for n in range(1, 31)))
    code, body = call(wire, "head", paths(home + "/n.txt"), raw="&lines=3")
    assert (code, body) == (0, ["line 1", "line 2", "line 3"])
    code, body = call(wire, "tail", paths(home + "/n.txt"), raw="&lines=2")
    assert (code, body) == (0, ["line 29", "line 30"])
    code, body = call(wire, "head", paths(home + "/n.txt"))  # the default: 20 lines
    assert code == 0 and body == ["line %d" % n for n in range(1, 21)]
    code, body = call(wire, "head", paths(home + "/n.txt"), raw="&lines=" + "9" * 5000)
    assert code == 102 and body == ["** lines: 99999999999999999999... is too large **"]
    code, body = call(wire, "tail", paths(home + "/none.txt"), raw="&lines=2")
    assert (code, body) == (105, ["%s/none.txt: No such file or directory" % home])


def test_wc_counts_with_and_without_flags(wire, home):
    _app, alice = wire
    write(alice, home + "/w.txt", "one two\nthree\n  four five six  \n")
    rel = home + "/w.txt"
    assert call(wire, "wc", paths(rel)) == (0, ["%s\t\t3\t6\t32" % rel])
    assert call(wire, "wc", paths(rel), flags="l") == (0, ["%s\t\t3\t\t" % rel])
    assert call(wire, "wc", paths(rel), flags="wb") == (0, ["%s\t\t\t6\t32" % rel])
    code, body = call(wire, "wc", paths(home))
    assert code == 100 and body == ["** %s: is a directory **" % home]


def test_traversal_and_links_out_of_the_home_are_refused(wire, home):
    app, alice = wire
    os.symlink("/etc", os.path.join(alice["home"], home, "out"))
    code, body = call(wire, "head", paths(home + "/out/passwd"))
    assert (code, body) == (102, ["** %s/out/passwd: outside your home **" % home])
    code, body = call(wire, "head", paths("../../../../etc/passwd"))
    assert (code, body) == (105, ["../../../../etc/passwd: No such file or directory"])
    code, body = call(wire, "expand", paths(home + "/*") + [("with_dest", "true")], flags="r")
    assert (code, body) == (105, ["%s/*: No such file or directory" % home])
    code, body = call(wire, "touch", paths(home + "/out/new.txt"))
    assert (code, body) == (102, ["** %s/out/new.txt: outside your home **" % home])
    assert not os.path.exists("/etc/new.txt")
    code, body = call(wire, "zip", paths(home + "/out", name="src") + [("dst", "x.zip")])
    assert code == 102 and "outside your home" in body[1]
    # a state-changing backend is POST only
    reply = app.curl(alice, "URL/cgi-bin/touch.py?output_format=txt&path=%s/get.txt" % home)
    assert exit_code(reply) == 100 and "touch changes state: use POST" in reply


# -- changing ---------------------------------------------------------------------------
def test_touch_truncate_and_rmdir(wire, home):
    _app, alice = wire
    local = write(alice, home + "/t.txt", "0123456789")
    os.utime(local, (1000, 1000))
    assert call(wire, "touch", paths(home + "/t.txt", home + "/new.txt")) == (0, [])
    assert os.stat(local).st_mtime > 1000
    assert os.path.getsize(os.path.join(alice["home"], home, "new.txt")) == 0
    code, body = call(wire, "touch", paths(home + "/no/such/dir.txt"))
    assert (code, body) == (105, ["** %s/no/such/dir.txt: No such file or directory **" % home])

    assert call(wire, "truncate", paths(home + "/t.txt"), raw="&size=3") == (0, [])
    assert open(local).read() == "012"
    assert call(wire, "truncate", paths(home + "/t.txt")) == (0, [])
    assert os.path.getsize(local) == 0
    code, body = call(wire, "truncate", paths(home + "/missing.txt"))
    assert (code, body) == (105, ["%s/missing.txt: No such file or directory" % home])

    os.makedirs(os.path.join(alice["home"], home, "e1/e2/e3"))
    write(alice, home + "/full/f.txt", "x")
    code, body = call(wire, "rmdir", paths(home + "/full"))
    assert (code, body) == (200, ["** rmdir '%s/full' failed! **" % home])
    assert call(wire, "rmdir", paths(home + "/e1/e2/e3"), flags="p") == (0, [])
    assert not os.path.exists(os.path.join(alice["home"], home, "e1"))
    assert os.path.isdir(os.path.join(alice["home"], home))  # stops at a non-empty parent
    code, body = call(wire, "rmdir", paths(home + "/t.txt"))
    assert (code, body) == (100, ["** rmdir '%s/t.txt' failed: not a directory **" % home])


def test_zip_unzip_round_trip_and_aliases(wire, home):
    _app, alice = wire
    write(alice, home + "/a.txt", "alpha\n")
    write(alice, home + "/d/b.txt", "beta\n")
    write(alice, home + "/d/sub/c.txt", "gamma\n")
    code, body = call(wire, "zip", paths("a.txt", "d", name="src")
                      + [("current_dir", home), ("dst", "out.zip")])
    assert (code, body) == (0, [
        "working in %s" % home,
        "Added %s/a.txt to %s/out.zip" % (home, home),
        "Added %s/d to %s/out.zip" % (home, home),
        "Packed archive of %s/a.txt, %s/d is now available in %s/out.zip" % (home, home, home)])
    with zipfile.ZipFile(os.path.join(alice["home"], home, "out.zip")) as archive:
        assert sorted(archive.namelist()) == ["a.txt", "d/", "d/b.txt", "d/sub/", "d/sub/c.txt"]

    code, body = call(wire, "unzip", paths(home + "/out.zip", name="src")
                      + [("dst", home + "/d3")])
    assert (code, body) == (0, ["The zip/tar archive %s/out.zip was unpacked in %s/d3"
                                % (home, home)])
    unpacked = os.path.join(alice["home"], home, "d3")
    assert open(os.path.join(unpacked, "a.txt")).read() == "alpha\n"
    assert open(os.path.join(unpacked, "d", "sub", "c.txt")).read() == "gamma\n"

    # the script's own call: current_dir sent blank, so '.', and MiG's other names
    code, body = call(wire, "pack", paths(home + "/d", name="src")
                      + [("current_dir", ""), ("dst", home + "/d.tar.gz")])
    assert code == 0 and body[0] == "working in ." and body[-1] == (
        "Packed archive of ./%s/d is now available in %s/d.tar.gz" % (home, home))
    with tarfile.open(os.path.join(alice["home"], home, "d.tar.gz")) as archive:
        assert sorted(archive.getnames()) == ["d", "d/b.txt", "d/sub", "d/sub/c.txt"]
    code, body = call(wire, "unpack", paths(home + "/d.tar.gz", name="src")
                      + [("dst", home + "/t")])
    assert code == 0 and open(os.path.join(alice["home"], home, "t/d/b.txt")).read() == "beta\n"

    code, body = call(wire, "zip", paths(home + "/none*", name="src") + [("dst", "x.zip")])
    assert (code, body) == (105, ["working in .", "./%s/none*: No such file or directory"
                                  % home])
    code, body = call(wire, "zip", paths(home + "/a.txt", name="src") + [("dst", "x.rar")])
    assert code == 100 and body[-1].startswith("** x.rar: unknown archive format")


def test_unzip_refuses_archives_that_point_outside(wire, home):
    _app, alice = wire
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../../escape.txt", "bad")
    write(alice, home + "/slip.zip", buffer.getvalue())
    code, body = call(wire, "unzip", paths(home + "/slip.zip", name="src") + [("dst", home)])
    assert code == 100
    assert body == ["** archive member '../../escape.txt' points outside the destination "
                    "folder; nothing was unpacked **"]
    assert not os.path.exists(os.path.join(alice["home"], home, "ok.txt"))


def certput(wire, local, dest, content_type=None):
    app, alice = wire
    args = ["-T", local, "-X", "CERTPUT"]
    if content_type:
        args += ["-H", "Content-Type: %s" % content_type]
    return app.curl(alice, *args, "URL/cert_redirect/%s" % dest).splitlines()


def test_certput_extractpackage_and_submitandextract(wire, home, tmp_path):
    app, alice = wire
    local = str(tmp_path / "pkg.zip")
    with zipfile.ZipFile(local, "w") as archive:
        archive.writestr("pkg/data.txt", "payload\n")
        archive.writestr("pkg/hello.mRSL", "::EXECUTE::\necho hello\n")
    assert certput(wire, local, home + "/pkg.zip", "extractpackage") == [
        "0", "The zip/tar archive %s/pkg.zip was unpacked in %s" % (home, home)]
    assert open(os.path.join(alice["home"], home, "pkg", "data.txt")).read() == "payload\n"
    assert os.path.isfile(os.path.join(alice["home"], home, "pkg.zip"))  # kept, as MiG does

    lines = certput(wire, local, home + "/again.zip", "submitandextract")
    assert lines[:2] == ["0", "The zip/tar archive %s/again.zip was unpacked in %s"
                         % (home, home)]
    assert len(lines) == 3 and re.match(r"^\S+ is the job id assigned\.$", lines[2]), lines
    job_id = lines[2].split()[0]
    status = app.backend(alice, "jobstatus", [("job_id", job_id)])
    assert exit_code(status) == 0 and "Job Id: %s" % job_id in status

    plain = tmp_path / "plain.txt"
    plain.write_text("not an archive\n")
    assert certput(wire, str(plain), home + "/plain.txt", "extractpackage") == [
        "0", "A 'normal' file was uploaded (%s/plain.txt). It can now be used as an "
             "inputfile in your .mRSL files" % home]
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK not really a zip")
    lines = certput(wire, str(broken), home + "/broken.zip", "extractpackage")
    assert lines[0] == "1" and lines[1].startswith("not a valid zip archive")


# -- message queues ----------------------------------------------------------------------
def mq(wire, action, queue=None, msg=None, msg_id=None, refused=False):
    """(exit code, body) of one mqueue call.  Its header names the action, as
    MiG's does; refused: a field the dispatcher refuses, so mqueue never ran
    and the header is the plain title."""
    fields = [] if queue is None else [("queue", queue)]
    fields += [] if msg is None else [("msg", msg)]
    fields += [] if msg_id is None else [("msg_id", msg_id)]
    app, alice = wire
    reply = app.backend(alice, "mqueue", fields,
                        raw_prefix="%s&flags=&action=%s" % (PREFIX, action))
    lines = reply.split("\n")
    assert lines[3] == ("___MESSAGE QUEUE___" if refused
                        else "___MESSAGE QUEUE %s___" % action.upper()), reply
    return exit_code(reply), "\n".join(lines[5:])


def test_mqueue_create_send_show_receive_list_remove(wire, home):
    _app, alice = wire
    queue = "q-" + home[-40:]
    assert mq(wire, "create", queue) == (0, "New '%s' queue created\n" % queue)
    code, body = mq(wire, "create", queue)
    assert code == 100 and "already exists" in body
    assert mq(wire, "send", queue, "first message") == (0, "Message sent to '%s' queue\n"
                                                           % queue)
    assert mq(wire, "send", queue, "second") == (0, "Message sent to '%s' queue\n" % queue)
    code, body = mq(wire, "listmessages", queue)
    ids = body.split()
    assert code == 0 and len(ids) == 2 and int(ids[0]) < int(ids[1])
    assert sorted(os.listdir(os.path.join(alice["home"], "message_queues", queue))) == ids

    assert mq(wire, "show", queue) == (0, "File: %s\nfirst message" % ids[0])  # no newline
    assert mq(wire, "show", queue, msg_id=ids[1]) == (0, "File: %s\nsecond" % ids[1])
    assert mq(wire, "receive", queue) == (0, "File: %s\nfirst message" % ids[0])
    assert mq(wire, "receive", queue) == (0, "File: %s\nsecond" % ids[1])
    assert mq(wire, "receive", queue) == (0, "NO MESSAGES")

    code, body = mq(wire, "listqueues")
    assert code == 0 and "default" in body.split("\n") and queue in body.split("\n")
    assert mq(wire, "send", None, "to the default") == (0, "Message sent to 'default' queue\n")
    assert mq(wire, "receive")[1].endswith("\nto the default")
    assert mq(wire, "remove", queue) == (0, "Existing '%s' queue removed\n" % queue)
    assert queue not in mq(wire, "listqueues")[1].split("\n")
    code, body = mq(wire, "send", queue, "lost")
    assert code == 105 and "No such queue: '%s'" % queue in body
    code, body = mq(wire, "create", ".hidden")
    assert code == 102 and "Invalid queue name: '.hidden'" in body
    code, body = mq(wire, "create", "../../escape", refused=True)
    assert code == 102 and not os.path.exists(os.path.join(alice["home"], "..", "escape"))
    code, body = mq(wire, "bogus", queue)
    assert code == 100 and 'Invalid action "bogus"' in body


# -- live I/O ---------------------------------------------------------------------------
WAITING_JOB = """::EXECUTE::
echo started
while [ ! -e go ]; do sleep 0.1; done
cat data.txt

::CPUTIME::
120
"""


def submit(app, alice, text):
    reply = app.backend(alice, "textarea", [("mrsltextarea_0", text)])
    assert exit_code(reply) == 0, reply
    return re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)


def job_state(app, alice, job_id):
    reply = app.backend(alice, "jobstatus", [("job_id", job_id)])
    match = re.search(r"^Status: (\w+)$", reply, re.M)
    return match.group(1) if match else None


def liveio(wire, action, job_id, src=(), dst=None):
    fields = [("job_id", job_id)] + paths(*src, name="src")
    fields += [] if dst is None else [("dst", dst)]
    return call(wire, "liveio", fields, raw="&action=%s" % action)


def test_liveio_send_and_get_with_a_running_job(wire, home):
    app, alice = wire
    job_id = submit(app, alice, WAITING_JOB)
    wait_for(lambda: job_state(app, alice, job_id) == "EXECUTING", 60, what="EXECUTING")
    live = os.path.join(alice["home"], "job_output", job_id, job_id + ".stdout")

    def fetched():
        code, body = liveio(wire, "send", job_id)
        return code == 0 and os.path.isfile(live) and open(live).read() == "started\n" and body
    body = wait_for(fetched, 30, what="the live stdout")
    assert body == ["Requesting live I/O for %s" % job_id,
                    "Copied %s.stdout from job %s to job_output/%s/%s.stdout"
                    % (job_id, job_id, job_id, job_id),
                    "Copied %s.stderr from job %s to job_output/%s/%s.stderr"
                    % (job_id, job_id, job_id, job_id)]
    code, body = liveio(wire, "send", job_id, ["no-such-file"], home)
    assert code == 100 and body[1].startswith("** no-such-file: missing")

    # the job's own script is never replaced; then the input the job waits for
    write(alice, "%s/%s.job" % (home, job_id), "echo replaced\n")
    code, body = liveio(wire, "input", job_id, [home + "/%s.job" % job_id], ".")
    assert code == 100 and body[1] == "** %s.job: belongs to the job and is not replaced **" \
        % job_id
    write(alice, "%s/.mig-job" % home, "echo replaced\n")
    code, body = liveio(wire, "input", job_id, [home + "/.mig-job"], ".")
    assert code == 100 and body[1] == "** .mig-job: belongs to the job and is not replaced **"
    code, body = liveio(wire, "get", job_id, [home + "/data.txt"])
    assert (code, body) == (100, ["Requesting live I/O for %s" % job_id,
                                  "** src and dst parameters required for live input **"])
    write(alice, home + "/data.txt", "live input\n")
    write(alice, home + "/go", "")
    code, body = liveio(wire, "get", job_id, [home + "/data.txt", home + "/go"], ".")
    assert (code, body) == (0, ["Requesting live I/O for %s" % job_id,
                                "Copied %s/data.txt to job %s as data.txt" % (home, job_id),
                                "Copied %s/go to job %s as go" % (home, job_id)])
    wait_for(lambda: job_state(app, alice, job_id) == "FINISHED", 60, what="FINISHED")
    assert open(live).read() == "started\nlive input\n"

    code, body = liveio(wire, "send", job_id)
    assert (code, body) == (100, ["Requesting live I/O for %s" % job_id,
                                  "Job %s is not currently being executed! Job status: FINISHED"
                                  % job_id])
    code, body = liveio(wire, "send", "no_such_job")
    assert code == 100 and body[1] == "** no_such_job: You do not have any matching job IDs! **"
    code, body = liveio(wire, "fetch", job_id)
    assert code == 100 and body[0].startswith("** Invalid live io action: fetch")


def test_liveio_is_refused_while_not_running(wire, home):
    app, alice = wire
    job_id = submit(app, alice, "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n")
    code, body = liveio(wire, "send", job_id)
    assert (code, body) == (100, ["Requesting live I/O for %s" % job_id,
                                  "Job %s is not currently being executed! Job status: QUEUED"
                                  % job_id])
