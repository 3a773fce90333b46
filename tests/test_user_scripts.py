"""MiG's user scripts as the appliance makes them (mig/scriptgen), run for real.

The scripts are downloaded from a live appliance with curl, unpacked, and run
with bash through a whole session: uploads, submits, job states, downloads,
every file operation, cancel/freeze/thaw/resubmit, and the failures, each
checked by its output and its exit status.  A recording server checks that
the requests are exactly upstream MiG's.  Every example in docs/scripts.md
is one of the commands run here.
"""

import hashlib
import http.server
import os
import re
import shlex
import stat
import subprocess
import sys
import threading
import zipfile

import pytest

from conftest import ENTRY, Appliance, exit_code, require_tool, wait_for

from mig import scriptgen
from mig.scriptgen import docs as script_docs
from mig.scriptgen.ops import OPS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
HELLO = "hello grid\nsecond line\nthird line\n"
JOB = "::EXECUTE::\necho hello from +JOBID+\n\n::JOBNAME::\nscripts\n"
LIVE_JOB = "::EXECUTE::\necho started\nsleep 600\n"
SPARC_JOB = "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n"
ASSIGNED = re.compile(r"^(\S+) is the job id assigned\.$", re.M)


class Reply:
    def __init__(self, result):
        self.rc = result.returncode
        self.out = result.stdout
        self.err = result.stderr

    @property
    def code(self):
        """MiG's exit code from the first line."""
        return exit_code(self.out)

    @property
    def body(self):
        """What follows the ___HEADER___ line and its blank line."""
        return self.out.split("___\n\n", 1)[1] if "___\n\n" in self.out else ""


class Session:
    """One user, the downloaded scripts, a work folder and a log of what ran."""

    def __init__(self, app, user, base):
        self.app, self.user, self.base = app, user, base
        self.dir = os.path.join(base, scriptgen.FOLDER)
        self.work = os.path.join(base, "work")
        os.makedirs(self.work)
        self.conf = self.write_conf("miguser.conf")
        self.ran = set()
        self.job_ids = set()

    def write_conf(self, name, **values):
        settings = {"migserver": self.app.url, "certfile": self.user["cert"],
                    "keyfile": self.user["key"], "cacertfile": self.app.ca}
        settings.update(values)
        path = os.path.join(self.base, name)
        with open(path, "w") as handle:
            handle.write("# written by the test\n")
            handle.write("".join("%s %s\n" % kv for kv in settings.items() if kv[1] is not None))
        return path

    def local(self, name, text):
        path = os.path.join(self.work, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def run(self, command, expect=0, conf=None):
        """Run 'migX.sh ARGS' (shell words) with -c CONF; expect an exit status
        (None: any, 'fail': not 0)."""
        argv = shlex.split(command)
        result = subprocess.run([os.path.join(self.dir, argv[0]), "-c", conf or self.conf]
                                + argv[1:], cwd=self.work, capture_output=True, text=True,
                                timeout=120)
        generic = command
        for job_id in sorted(self.job_ids, key=len, reverse=True):
            generic = generic.replace(job_id, "JOBID")
        self.ran.add(generic)
        reply = Reply(result)
        if expect == "fail":
            assert reply.rc != 0, (command, reply.out, reply.err)
        elif expect is not None:
            assert reply.rc == expect, (command, reply.rc, reply.out, reply.err)
        return reply

    def job(self, command):
        """Run an upload that submits one job; return its id."""
        reply = self.run(command)
        assert reply.out.splitlines()[0] == "0", reply.out
        job_id = ASSIGNED.search(reply.out).group(1)
        self.job_ids.add(job_id)
        return job_id

    def status(self, job_id):
        reply = self.run("migstatus.sh %s" % job_id)
        assert reply.code == 0, reply.out
        return re.search(r"^Status: (\w+)$", reply.out, re.M).group(1)

    def wait(self, job_id, state, timeout=60):
        wait_for(lambda: self.status(job_id) == state, timeout, 0.3,
                 what="job %s to be %s" % (job_id, state))


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    require_tool("bash", "apt-get install bash")
    require_tool("curl", "apt-get install curl")
    base = str(tmp_path_factory.mktemp("userscripts"))
    app = Appliance([sys.executable, ENTRY], os.path.join(base, "state"))
    alice = app.add_user("alice")
    app.start()
    try:
        # the scripts exactly as a user gets them: curl with the certificate
        archive = os.path.join(base, "scripts.zip")
        app.curl(alice, "--fail", "-o", archive, "URL/cgi-bin/scriptsdownload.py?name=all")
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                zipped.extract(info, base)
                os.chmod(os.path.join(base, info.filename), info.external_attr >> 16 & 0o777)
        yield Session(app, alice, base)
    finally:
        app.stop()
        app.remove_work_folder()


# -- getting the scripts ---------------------------------------------------------------
def test_downloaded_zip_has_every_script_and_a_filled_in_conf(session):
    assert sorted(os.listdir(session.dir)) == sorted(scriptgen.names())
    for name in scriptgen.names():
        path = os.path.join(session.dir, name)
        with open(path) as handle:
            text = handle.read()
        if name.endswith(".sh") and name != scriptgen.LIB:
            assert text.startswith("#!/usr/bin/env bash\n"), name
            assert os.stat(path).st_mode & stat.S_IXUSR, name
            assert 'source "$(dirname "${BASH_SOURCE[0]}")/miglib.sh"' in text
    with open(os.path.join(session.dir, scriptgen.CONF)) as handle:
        conf = handle.read()
    assert re.search(r"^migserver https://\S+:\d+$", conf, re.M), conf
    for line in ("certfile ~/.mig/user.crt", "keyfile ~/.mig/user.key",
                 "cacertfile ~/.mig/cacert.pem"):
        assert "\n%s\n" % line in conf
    assert "alice" in conf


def test_scriptsdownload_serves_single_files(session):
    app, alice = session.app, session.user
    with open(os.path.join(session.dir, "migls.sh")) as handle:
        assert app.curl(alice, "--fail", "URL/cgi-bin/scriptsdownload.py?name=migls.sh") == \
            handle.read()
    assert app.curl(alice, "--fail", "URL/cgi-bin/scriptsdownload.py?name=ls").startswith(
        "#!/usr/bin/env bash\n# migls.sh:")
    conf = app.curl(alice, "--fail", "URL/cgi-bin/scriptsdownload.py?name=miguser.conf")
    assert "certfile ~/.mig/user.crt" in conf
    headers = app.curl(alice, "--fail", "-D", "-", "-o", "/dev/null",
                       "URL/cgi-bin/scriptsdownload.py?name=all")
    assert 'filename="mig_user_scripts.zip"' in headers
    reply = app.curl(alice, "URL/cgi-bin/scriptsdownload.py?name=nosuch&output_format=txt")
    assert exit_code(reply) == 100 and "no script 'nosuch'" in reply
    # a token works as well as the certificate
    token = subprocess.run(["curl", "-sS", "--fail", "--cacert", app.ca, "-H",
                            "Authorization: Bearer " + alice["token"],
                            app.url + "/cgi-bin/scriptsdownload.py?name=miglib.sh"],
                           capture_output=True, text=True, timeout=60)
    assert token.returncode == 0 and token.stdout.startswith("# miglib.sh")


def test_scripts_backend_writes_into_the_home(session):
    app, alice = session.app, session.user
    listing = app.curl(alice, "-G", "--data", "output_format=txt", "URL/cgi-bin/scripts.py")
    assert exit_code(listing) == 100 and "use POST" in listing  # it changes files: POST only
    reply = app.backend(alice, "scripts", [("lang", "sh"), ("flavor", "user")])
    assert exit_code(reply) == 0, reply
    home = alice["home"]
    for name in scriptgen.names():
        assert os.path.isfile(os.path.join(home, scriptgen.FOLDER, name)), name
    assert os.stat(os.path.join(home, scriptgen.FOLDER, "migput.sh")).st_mode & stat.S_IXUSR
    with zipfile.ZipFile(os.path.join(home, scriptgen.FOLDER + ".zip")) as zipped:
        assert sorted(zipped.namelist()) == sorted("%s/%s" % (scriptgen.FOLDER, n)
                                                   for n in scriptgen.names())
    listed = session.run("migls.sh mig_user_scripts").body.split()
    assert sorted(listed) == sorted(scriptgen.names())
    reply = app.backend(alice, "scripts", [("lang", "python"), ("flavor", "user")])
    assert exit_code(reply) == 100 and "Python 2" in reply
    reply = app.backend(alice, "scripts", [("script_dir", "../tools/mine")])
    assert exit_code(reply) == 0, reply
    assert os.path.isfile(os.path.join(home, "tools", "mine", "migls.sh"))
    assert os.path.isfile(os.path.join(home, "tools", "mine.zip"))


def test_downloads_page_links_every_script(session):
    page = session.app.curl(session.user, "--fail", "URL/cgi-bin/downloads.py")
    for name in scriptgen.names() + ["all"]:
        assert "/cgi-bin/scriptsdownload.py?name=%s" % name in page, name
    assert "mig_user_scripts.zip" in page and "User scripts" in page
    for existing in ("ca.crt", "user.crt", "user.key", "user.p12"):  # the older rows stay
        assert existing in page


# -- a session -----------------------------------------------------------------------
def test_upload_submit_and_follow_jobs(session):
    session.local("hello.txt", HELLO)
    session.local("job.mRSL", JOB)
    reply = session.run("migput.sh hello.txt .")
    assert reply.out.splitlines() == [
        "0", "A 'normal' file was uploaded (hello.txt). It can now be used as an inputfile "
        "in your .mRSL files"]
    # a file already on the server
    session.run("migput.sh job.mRSL .")
    reply = session.run("migsubmit.sh job.mRSL")
    assert reply.code == 0
    on_server = re.search(r"^job\.mRSL\s+1\s+(\S+)$", reply.out, re.M).group(1)
    session.job_ids.add(on_server)
    # uploaded and submitted in one request, two ways
    with_put = session.job("migput.sh -p job.mRSL .")
    local = session.job("migsubmit.sh -l job.mRSL")
    for job_id in (on_server, with_put, local):
        session.wait(job_id, "FINISHED")
    reply = session.run("migstatus.sh %s" % local)
    assert "Job Id: %s\nStatus: FINISHED\n" % local in reply.out
    assert "Exit status 1: 0 (command: echo hello from %s)" % local in reply.out
    reply = session.run("migstatus.sh -m 1")
    assert re.search(r"^Only showing first 1 of the \d+ matching jobs as requested$",
                     reply.out, re.M)
    assert reply.out.count("Job Id:") == 1

    reply = session.run("migget.sh job_output/%s/%s.stdout out" % (local, local))
    assert reply.out == ""
    with open(os.path.join(session.work, "out", local + ".stdout")) as handle:
        assert handle.read() == "hello from %s\n" % local
    reply = session.run("migget.sh 'job_output/*/*.stdout' many")
    assert set(os.listdir(os.path.join(session.work, "many"))) >= {
        "%s.stdout" % j for j in (on_server, with_put, local)}


def test_list_and_read_files(session):
    session.local("hello.txt", HELLO)
    session.run("migput.sh hello.txt .")
    reply = session.run("migls.sh")
    assert "hello.txt" in reply.body.splitlines()
    reply = session.run("migls.sh -l hello.txt")
    assert re.match(r"^-rw\S+ %d \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}  hello\.txt$"
                    % len(HELLO), reply.body.strip()), reply.out
    reply = session.run("migcat.sh hello.txt")
    assert reply.code == 0 and reply.body == HELLO
    assert session.run("mighead.sh -n 1 hello.txt").body == "hello grid\n"
    assert session.run("migtail.sh -n 1 hello.txt").body == "third line\n"
    assert session.run("migwc.sh hello.txt").body == "hello.txt\t\t3\t6\t%d\n" % len(HELLO)
    stat_lines = dict(line.split("\t") for line in
                      session.run("migstat.sh hello.txt").body.splitlines())
    assert stat_lines["size"] == str(len(HELLO)) and stat.S_ISREG(int(stat_lines["mode"]))
    for script, algo in (("migmd5sum.sh", hashlib.md5), ("migsha1sum.sh", hashlib.sha1)):
        reply = session.run("%s hello.txt" % script)
        assert reply.body == "%s hello.txt\n" % algo(HELLO.encode()).hexdigest()
    assert session.run("miggrep.sh second hello.txt").body == "second line\n"


def test_change_files_and_folders(session):
    session.local("hello.txt", HELLO)
    session.run("migput.sh hello.txt .")
    assert session.run("migmkdir.sh dir1").body == "created directory dir1\n"
    session.run("migmkdir.sh -p dir2/sub")
    session.run("migcp.sh hello.txt dir1/copy.txt")
    session.run("migmv.sh dir1/copy.txt dir1/moved.txt")
    assert session.run("migls.sh dir1").body == "moved.txt\n"
    assert session.run("migcat.sh dir1/moved.txt").body == HELLO
    session.run("migtouch.sh dir1/empty.txt")
    assert session.run("migls.sh dir1").body == "empty.txt\nmoved.txt\n"
    session.run("migtruncate.sh -n 5 dir1/moved.txt")
    assert session.run("migcat.sh dir1/moved.txt").body == "hello"
    session.run("migrmdir.sh dir2/sub")
    assert session.run("migls.sh dir2").body == ""
    reply = session.run("migrmdir.sh dir1", expect="fail")
    assert "rmdir 'dir1' failed" in reply.out
    assert session.run("migrm.sh dir1/empty.txt").body == "removed dir1/empty.txt\n"
    assert "empty.txt" in session.run("migls.sh Trash").body
    session.run("migrm.sh -r -f dir1")
    assert session.run("migls.sh dir1", expect=105).code == 105


def test_zip_and_unzip(session):
    session.local("hello.txt", HELLO)
    session.run("migput.sh hello.txt .")
    reply = session.run("migzip.sh hello.txt hello.zip")
    assert "Added hello.txt to hello.zip" in reply.out
    reply = session.run("migunzip.sh hello.zip unzipped")
    assert "hello.zip was unpacked in unzipped" in reply.out
    assert session.run("migcat.sh unzipped/hello.txt").body == HELLO


def test_folders_and_awkward_names(session):
    session.local("folder/a.txt", "a\n")
    session.local("folder/sub/b.txt", "b\n")
    session.run("migput.sh -r folder .")
    assert session.run("migls.sh folder/sub").body == "b.txt\n"
    odd = "it's $HOME é & x.txt"
    session.local(odd, "odd\n")
    session.run("migput.sh %s ." % shlex.quote(odd))
    assert session.run("migls.sh %s" % shlex.quote(odd)).body == odd + "\n"
    assert session.run("migcat.sh %s" % shlex.quote(odd)).body == "odd\n"
    session.run("migget.sh -r folder out")
    with open(os.path.join(session.work, "out", "folder", "sub", "b.txt")) as handle:
        assert handle.read() == "b\n"
    session.run("migget.sh %s 'odd out'" % shlex.quote(odd))
    with open(os.path.join(session.work, "odd out", odd)) as handle:
        assert handle.read() == "odd\n"


def test_cancel_freeze_thaw_feasible_resubmit(session):
    session.local("live.mRSL", LIVE_JOB)
    session.local("sparc.mRSL", SPARC_JOB)
    session.local("job.mRSL", JOB)
    # a job no resource can run stays QUEUED: freeze and thaw it both ways
    sparc = session.job("migsubmit.sh -l sparc.mRSL")
    assert session.status(sparc) == "QUEUED"
    reply = session.run("migfeasible.sh %s" % sparc)
    assert "RED" in reply.out and "ARCHITECTURE: the job needs SPARC" in reply.out
    for command, new in (("migjobaction.sh freeze", "FROZEN"), ("migjobaction.sh thaw", "QUEUED"),
                         ("migfreeze.sh", "FROZEN"), ("migthaw.sh", "QUEUED")):
        reply = session.run("%s %s" % (command, sparc))
        assert re.search(r"^%s\s+\w+\s+%s$" % (re.escape(sparc), new), reply.out, re.M), reply.out
        assert session.status(sparc) == new
    session.run("migthaw.sh %s" % sparc, expect=100)  # not frozen
    # a running job is cancelled
    live = session.job("migsubmit.sh -l live.mRSL")
    session.wait(live, "EXECUTING")
    reply = session.run("migcancel.sh %s" % live)
    assert re.search(r"^%s\s+EXECUTING\s+CANCELED$" % re.escape(live), reply.out, re.M)
    assert session.status(live) == "CANCELED"
    reply = session.run("migcancel.sh %s" % live, expect=100)
    assert "You can only cancel jobs with status" in reply.out
    session.run("migcancel.sh %s" % sparc)
    # a finished job is resubmitted as a new one
    done = session.job("migsubmit.sh -l job.mRSL")
    session.wait(done, "FINISHED")
    reply = session.run("migresubmit.sh %s" % done)
    new = re.search(r"^%s\s+1\s+(\S+)$" % re.escape(done), reply.out, re.M).group(1)
    session.job_ids.add(new)
    session.wait(new, "FINISHED")


def test_live_io_message_queues_and_docs(session):
    reply = session.run("migdoc.sh")
    assert reply.code == 0 and re.search(r"^mrsl\s+mRSL reference$", reply.out, re.M)
    reply = session.run("migdoc.sh mrsl")
    assert reply.code == 0 and "EXECUTE" in reply.out
    assert "New 'q1' queue created" in session.run("migmqueue.sh create q1").out
    assert "Message sent to 'q1' queue" in session.run("migmqueue.sh send q1 hello").out
    reply = session.run("migmqueue.sh receive q1")
    assert re.search(r"^File: \S+\nhello$", reply.body)
    session.local("live.mRSL", LIVE_JOB)
    session.local("hello.txt", HELLO)
    session.run("migput.sh hello.txt .")
    live = session.job("migsubmit.sh -l live.mRSL")
    session.wait(live, "EXECUTING")
    wait_for(lambda: session.run("migliveio.sh put %s %s.stdout live" % (live, live),
                                 expect=None).rc == 0, 20, 0.3, what="live output")
    assert session.run("migcat.sh live/%s.stdout" % live).body == "started\n"
    reply = session.run("migliveio.sh get %s hello.txt ." % live)
    assert "Copied hello.txt to job %s" % live in reply.out
    session.run("migcancel.sh %s" % live)
    reply = session.run("migliveio.sh put %s %s.stdout live" % (live, live), expect=100)
    assert "is not currently being executed" in reply.out


def test_failures_exit_non_zero(session):
    session.local("hello.txt", HELLO)
    reply = session.run("migcat.sh missing.txt", expect=1)  # MiG's 404 is above 255
    assert reply.code == 404 and "missing.txt: No such file or directory" in reply.out
    assert session.run("migls.sh missing", expect=105).code == 105
    assert session.run("migstatus.sh nosuchjob", expect=100).code == 100
    assert session.run("migsubmit.sh missing.mRSL", expect=105).code == 105
    reply = session.run("migput.sh missing.txt .", expect=2)
    assert "missing.txt: no such local file" in reply.err
    session.local("bad.mRSL", "::EXECUTE::\necho\n\n::CPUTIME::\nlots\n")
    reply = session.run("migsubmit.sh -l bad.mRSL", expect=1)
    assert reply.out.splitlines()[0] == "1" and "parse failed" in reply.out
    # usage and configuration errors
    assert "missing arguments" in session.run("migcat.sh", expect=2).err
    assert "unknown option -q" in session.run("migls.sh -q", expect=2).err
    assert "not a whole number" in session.run("mighead.sh -n x hello.txt", expect=2).err
    assert "not a plain word" in session.run("migjobaction.sh 'a&b' X", expect=2).err
    assert "cannot read the configuration" in session.run(
        "migls.sh", expect=2, conf=os.path.join(session.base, "nosuch.conf")).err
    # failed requests: curl's exit code
    reply = session.run("migls.sh -s https://127.0.0.1:1", expect=7)
    assert "curl: (7)" in reply.err
    untrusted = session.write_conf("untrusted.conf", cacertfile=session.user["cert"])
    assert session.run("migls.sh", expect=60, conf=untrusted).rc == 60
    bad_token = session.write_conf("badtoken.conf", certfile=None, keyfile=None,
                                   token="mig_not_a_token")
    reply = session.run("migls.sh", expect=104, conf=bad_token)
    assert "the API token is not valid" in reply.out
    reply = session.run("migget.sh missing.txt out", expect=105)
    assert "cannot get missing.txt" in reply.err


def test_token_instead_of_certificate(session):
    conf = session.write_conf("token.conf", certfile=None, keyfile=None,
                              token=session.user["token"])
    session.local("token.txt", "via token\n")
    session.run("migput.sh token.txt .", conf=conf)
    assert session.run("migcat.sh token.txt", conf=conf).body == "via token\n"
    # the token never shows on curl's command line
    with open(os.path.join(session.dir, "miglib.sh")) as handle:
        assert "--config <(mig_secrets)" in handle.read()


def test_selftest(session):
    reply = session.run("migtest.sh")
    lines = reply.out.splitlines()
    assert lines and all(line.endswith("test SUCCEEDED") for line in lines), reply.out
    assert "get test SUCCEEDED" in lines and "cleanup test SUCCEEDED" in lines
    assert not [n for n in session.run("migls.sh").body.split() if n.startswith("migtest-")]
    reply = session.run("migtest.sh nosuchop", expect=1)
    assert "nosuchop test FAILED" in reply.out


def test_every_documented_example_ran(session):
    """Runs last: the examples of docs/scripts.md are commands this file ran."""
    examples = {e for spec in OPS.values() for e in spec.examples}
    with open(os.path.join(DOCS, script_docs.NAME), encoding="utf-8") as handle:
        documented = {line.strip() for block in re.findall(r"```sh\n(.*?)```", handle.read(),
                                                           re.S)
                      for line in block.splitlines() if re.match(r"mig\w+\.sh\b", line)}
    assert documented <= examples, documented - examples
    if len(session.ran) < 20:
        pytest.skip("run the whole file to check the examples")
    assert examples - session.ran == set(), sorted(examples - session.ran)


# -- help, docs and the exact requests --------------------------------------------------
@pytest.mark.parametrize("op", sorted(OPS))
def test_help(op, tmp_path):
    require_tool("bash", "apt-get install bash")
    scriptgen_dir = tmp_path / "s"
    scriptgen_dir.mkdir()
    for name, text in scriptgen.scripts("https://grid.example.org:8443", "alice").items():
        (scriptgen_dir / name).write_text(text)
    result = subprocess.run(["bash", str(scriptgen_dir / scriptgen.script_name(op)), "-h"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout == scriptgen.help_text(op) + "\n"
    assert result.stdout.startswith("Usage: %s [OPTIONS]" % scriptgen.script_name(op))
    result = subprocess.run(["bash", str(scriptgen_dir / scriptgen.script_name(op)), "-V"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("MiG appliance user scripts")


def test_docs_are_current():
    assert not script_docs.check(DOCS), "run: python -m mig.scriptgen docs"
    with open(os.path.join(DOCS, "README.md"), encoding="utf-8") as handle:
        assert "(scripts.md)" in handle.read()


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records each request; answers like MiG (txt, the 0/1 upload reply, a file)."""
    protocol_version = "HTTP/1.1"

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, self.headers.get("Content-Type"),
                                 body.decode("utf-8"), dict(self.headers)))
        if self.command == "POST":
            reply = "Exit code: 0 Description OK (done in 0.001s)\nTitle: x\n\n___X___\n\n"
            if self.path.endswith("/expand.py"):
                reply += "a.txt    ::    a.txt\n"
        elif self.command in ("PUT", "CERTPUT"):
            reply = "0\nstored\n"
        else:
            reply = "file\n"
        data = reply.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_CERTPUT = _handle

    def log_message(self, *args):
        pass


P = "_=certauth;output_format=txt&flags="
POSTS = [  # (command, backend, body): upstream MiG's bodies (docs/backends.md, §4.3 layout)
    ("migls.sh -la dir1 'f*.txt'", "ls", P + "la&path=dir1&path=f%2A.txt"),
    ("migls.sh", "ls", P + "&path=."),
    ("migcat.sh a.txt b.txt", "cat", P + "&path=a.txt&path=b.txt"),
    ("mighead.sh -n 3 a.txt", "head", P + "&lines=3&path=a.txt"),
    ("migtail.sh a.txt", "tail", P + "&lines=20&path=a.txt"),
    ("migwc.sh -l -w a.txt", "wc", P + "lw&path=a.txt"),
    ("migstat.sh a.txt", "statpath", P + "&path=a.txt"),
    ("migmd5sum.sh a.txt", "chksum", P + "&hash_algo=md5&path=a.txt"),
    ("migsha1sum.sh a.txt", "chksum", P + "&hash_algo=sha1&path=a.txt"),
    ("miggrep.sh 'a b' a.txt", "grep", P + "&path=a.txt&pattern=a%20b"),
    ("migtouch.sh a.txt", "touch", P + "&path=a.txt"),
    ("migtruncate.sh -n 4 a.txt", "truncate", P + "&size=4&path=a.txt"),
    ("migmkdir.sh -p d/e", "mkdir", P + "p&path=d%2Fe"),
    ("migrm.sh -r -f d", "rm", P + "rf&path=d"),
    ("migrmdir.sh d", "rmdir", P + "&path=d"),
    ("migmv.sh a b d", "mv", P + "&src=a&src=b&dst=d"),
    ("migcp.sh -r a d", "cp", P + "r&src=a&dst=d"),
    ("migzip.sh a b.zip", "zip", P + "&src=a&current_dir=&dst=b.zip"),
    ("migunzip.sh b.zip d", "unzip", P + "&src=b.zip&dst=d"),
    ("migsubmit.sh j.mRSL", "submit", P + "&path=j.mRSL"),
    ("migstatus.sh -S -v J1 J2", "jobstatus", P + "sv&max_jobs=1000000&job_id=J1&job_id=J2"),
    ("migstatus.sh -m 5", "jobstatus", P + "&max_jobs=5"),
    ("migcancel.sh J1", "jobaction", P + "&action=cancel&job_id=J1"),
    ("migjobaction.sh freeze J1 J2", "jobaction", P + "&action=freeze&job_id=J1&job_id=J2"),
    ("migfreeze.sh J1", "jobaction", P + "&action=freeze&job_id=J1"),
    ("migthaw.sh J1", "jobaction", P + "&action=thaw&job_id=J1"),
    ("migresubmit.sh J1", "resubmit", P + "&job_id=J1"),
    ("migfeasible.sh J1", "jobfeasible", P + "&job_id=J1"),
    ("migliveio.sh put J1 a b out", "liveio", P + "&action=put&src=a&src=b&job_id=J1&dst=out"),
    ("migmqueue.sh send q1 'hi there'", "mqueue", P + "&action=send&queue=q1&msg=hi%20there"),
    ("migmqueue.sh listqueues", "mqueue", P + "&action=listqueues&queue=&msg="),
    ("migdoc.sh", "docs", P + "&search=%2A&show="),
    ("migdoc.sh mrsl", "docs", P + "&search=&show=mrsl"),
    ("migls.sh -v -l", "ls", P + "vl&path=."),
    ("migdoc.sh -v", "docs", P + "&search=%2A&show="),  # docs takes no flags
    # upstream's sh scripts word-split this into path=my&dir; its python scripts send this
    ("migls.sh 'my dir'", "ls", P + "&path=my%20dir"),
]
UPLOADS = [  # (command, local file, request path, Content-Type)
    ("migput.sh a.txt .", "a.txt", "/cert_redirect/a.txt", None),
    ("migput.sh a.txt d/", "a.txt", "/cert_redirect/d/a.txt", None),
    ("migput.sh a.txt new.txt", "a.txt", "/cert_redirect/new.txt", None),
    ("migput.sh -p j.mRSL .", "j.mRSL", "/cert_redirect/j.mRSL", "submitmrsl"),
    ("migput.sh -x p.zip .", "p.zip", "/cert_redirect/p.zip", "extractpackage"),
    ("migput.sh -p -x p.zip .", "p.zip", "/cert_redirect/p.zip", "submitandextract"),
    ("migsubmit.sh -l j.mRSL", "j.mRSL", "/cert_redirect/j.mRSL", "submitandextract"),
    ("migput.sh 'é x.txt' .", "é x.txt", "/cert_redirect/%C3%A9%20x.txt", None),
]


@pytest.fixture(scope="module")
def recorder(tmp_path_factory):
    require_tool("bash", "apt-get install bash")
    require_tool("curl", "apt-get install curl")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = tmp_path_factory.mktemp("recorder")
    for name, text in scriptgen.scripts("https://grid.example.org:8443", "alice").items():
        (base / name).write_text(text)
    for name in ("a.txt", "j.mRSL", "p.zip", "é x.txt", "folder/a.txt", "folder/sub/b.txt"):
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("content of %s\n" % name)
    url = "http://127.0.0.1:%d" % server.server_address[1]
    conf = base / "test.conf"  # over plain http curl does not use the certificate
    conf.write_text("migserver %s\ncertfile %s\nkeyfile %s\ncacertfile AUTO\n"
                    % (url, base / "none.crt", base / "none.key"))

    def run(command, conf_path=conf):
        del server.seen[:]
        argv = shlex.split(command)
        result = subprocess.run(["bash", str(base / argv[0]), "-c", str(conf_path)] + argv[1:],
                                cwd=str(base), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        return list(server.seen)
    run.base = base
    run.url = url
    yield run
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command,name,body", POSTS)
def test_post_requests_are_upstream_migs(recorder, command, name, body):
    [(method, path, ctype, sent, headers)] = recorder(command)
    # curl encodes a space as %20 or (since 7.8x) +: the same curl sends the same bytes
    assert (method, path, sent.replace("+", "%20")) == ("POST", "/cgi-bin/%s.py" % name, body)
    assert ctype == "application/x-www-form-urlencoded"
    assert headers["User-Agent"].startswith("curl/")


@pytest.mark.parametrize("command,local,path,ctype", UPLOADS)
def test_uploads_are_upstream_migs(recorder, command, local, path, ctype):
    [(method, sent_path, sent_ctype, body, _headers)] = recorder(command)
    assert (method, sent_path, sent_ctype) == ("CERTPUT", path, ctype)
    assert body == "content of %s\n" % local


def test_recursive_put_and_get_are_upstream_migs(recorder):
    seen = recorder("migput.sh -r folder .")
    assert seen[0][:4] == ("POST", "/cgi-bin/mkdir.py", "application/x-www-form-urlencoded",
                           "_=certauth;output_format=txt&flags=p&path=folder&path=folder%2Fsub")
    assert sorted(s[:2] for s in seen[1:]) == [("CERTPUT", "/cert_redirect/folder/a.txt"),
                                             ("CERTPUT", "/cert_redirect/folder/sub/b.txt")]
    seen = recorder("migget.sh -r 'a*' got")
    assert [s[:2] for s in seen] == [("POST", "/cgi-bin/expand.py"),
                                    ("GET", "/cert_redirect/a.txt")]
    assert seen[0][3] == "_=certauth;output_format=txt&flags=r&with_dest=true&path=a%2A"
    with open(os.path.join(str(recorder.base), "got", "a.txt")) as handle:
        assert handle.read() == "file\n"


def test_token_is_sent_as_bearer_header(recorder):
    conf = recorder.base / "token.conf"
    conf.write_text("migserver %s\ntoken tok_123\n" % recorder.url)
    [(method, path, _ctype, body, headers)] = recorder("migls.sh", conf)
    assert headers["Authorization"] == "Bearer tok_123"
    assert body == P + "&path=."
