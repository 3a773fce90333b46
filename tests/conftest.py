"""Shared fixtures: a real appliance server on a free port, users, curl.

Every process a test starts is stopped by its PID in the fixture's teardown.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY = os.path.join(ROOT, "migappliance.py")
PYZ = os.path.join(ROOT, "dist", "migappliance.pyz")
IN_CI = os.environ.get("CI") == "true"


def require_tool(path_or_name, install_hint):
    """Skip outside CI (with what to install), fail in CI."""
    from shutil import which
    if which(path_or_name) or os.path.exists(path_or_name):
        return
    message = "%s is missing: %s" % (path_or_name, install_hint)
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def stop_pid(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Appliance:
    """One running appliance process and helpers to talk to it."""

    def __init__(self, command, state, extra_args=()):
        self.command = list(command)
        self.state = state
        self.extra_args = list(extra_args)
        self.proc = None
        self.url = None

    def cli(self, *args, check=True):
        result = subprocess.run(self.command + list(args) + ["--state", self.state],
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError("cli %s failed: %s" % (args, result.stderr))
        return result

    def add_user(self, name):
        return json.loads(self.cli("user", "add", name, "--json").stdout)

    def start(self):
        self.proc = subprocess.Popen(
            self.command + ["serve", "--state", self.state, "--port", "0"] + self.extra_args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode("utf-8", "replace")
        if "serving" not in line:
            stop_pid(self.proc)
            raise AssertionError("appliance did not start: %r %s" % (
                line, self.proc.stderr.read().decode("utf-8", "replace")))
        self.url = line.split("serving", 1)[1].strip()
        # The log is read as it comes (its last 64 KB kept in self.log): a pipe
        # nobody reads fills up, and then the appliance blocks on its next line.
        import threading
        self.log = b""

        def drain(stream=self.proc.stderr):
            for chunk in iter(lambda: stream.read1(8192), b""):
                self.log = (self.log + chunk)[-65536:]
        threading.Thread(target=drain, daemon=True).start()
        return self

    def stop(self):
        if self.proc is not None:
            stop_pid(self.proc)
            for stream in (self.proc.stdout, self.proc.stderr):
                stream.close()
            self.proc = None

    def remove_work_folder(self):
        """Job folders may live outside the state folder (as root): remove them too."""
        import shutil
        from mig import config
        if os.path.isdir(self.state):
            shutil.rmtree(config.load(self.state).work_root, ignore_errors=True)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.proc = None

    @property
    def ca(self):
        return os.path.join(self.state, "ca", "ca.crt")

    def curl(self, user, *args, ok_codes=(0,)):
        """Run curl as user (certificate) against this appliance; returns stdout."""
        cmd = ["curl", "-sS", "--cacert", self.ca, "--cert", user["cert"], "--key", user["key"]]
        cmd += [a.replace("URL", self.url) for a in args]
        result = subprocess.run(cmd, capture_output=True, timeout=60)
        assert result.returncode in ok_codes, (cmd, result.returncode, result.stderr)
        return result.stdout.decode("utf-8", "replace")

    def backend(self, user, name, fields, raw_prefix="_=certauth;output_format=txt"):
        """POST MiG's way: a raw first piece, then url-encoded fields."""
        args = ["--data", raw_prefix]
        for key, value in fields:
            args += ["--data-urlencode", "%s=%s" % (key, value)]
        return self.curl(user, *args, "URL/cgi-bin/%s.py" % name)


def exit_code(reply):
    first = reply.splitlines()[0]
    assert first.startswith("Exit code: "), reply
    return int(first.split()[2])


def after_two_passes(app, user, job_id, timeout=30):
    """jobfeasible's reply for a job once the scheduler has ended two passes
    after this call: the second began after the job was there, so what the
    job's state is then is the scheduler's decision, not its not having
    looked yet."""
    import re

    def feasible():
        reply = app.backend(user, "jobfeasible", [("job_id", job_id)])
        return int(re.search(r"^Scheduling pass (\d+) ended ", reply, re.M).group(1)), reply
    first = feasible()[0]
    return wait_for(lambda: (lambda now: now[0] >= first + 2 and now[1])(feasible()),
                    timeout, what="two scheduling passes")


def wait_for(predicate, timeout=30, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s" % what)


@pytest.fixture
def appliance_factory(tmp_path):
    started = []

    def make(command=None, state=None, extra_args=()):
        app = Appliance(command or [sys.executable, ENTRY],
                        state or str(tmp_path / ("state%d" % len(started))), extra_args)
        started.append(app)
        return app
    yield make
    for app in started:
        app.stop()
        app.remove_work_folder()


@pytest.fixture
def appliance(appliance_factory):
    app = appliance_factory()
    app.cli("user", "list")  # initialise the state folder
    return app.start()


@pytest.fixture
def alice_grid(appliance_factory):
    """A running appliance and its user alice (the `user add --json` reply)."""
    app = appliance_factory()
    alice = app.add_user("alice")
    app.start()
    return app, alice


@pytest.fixture
def alice_conn(alice_grid):
    """alice_grid and a keep-alive connection with alice's certificate."""
    app, alice = alice_grid
    conn = https_connection(app, alice)
    yield app, alice, conn
    conn.close()


def post_fields(app, token, path, fields):
    """POST url-encoded fields with a token on a fresh connection; the reply
    text of a 200 (anything else fails the test)."""
    import urllib.parse
    conn = https_connection(app)
    try:
        status, reply = post(conn, path, urllib.parse.urlencode(fields), token)
    finally:
        conn.close()
    assert status == 200, reply
    return reply


def https_connection(app, user=None, timeout=30, source=None):
    """A keep-alive http.client connection trusting the appliance CA; source: the
    local address to connect from (another loopback address is another client)."""
    import http.client
    import ssl
    from urllib.parse import urlsplit
    ctx = ssl.create_default_context(cafile=app.ca)
    if user is not None:
        ctx.load_cert_chain(user["cert"], user["key"])
    parts = urlsplit(app.url)
    return http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=timeout,
                                       source_address=(source, 0) if source else None)


def portal_login(conn, user, password, next_path=None, agent="Mozilla/5.0 test"):
    """Log in as a browser does: load the form (its pre-login cookie and CSRF
    token), then post it.  Returns (response, body, session cookie or "")."""
    import urllib.parse
    conn.request("GET", "/login", headers={"User-Agent": agent})
    resp = conn.getresponse()
    page = resp.read().decode()
    cookie = resp.headers["Set-Cookie"].split(";")[0]
    fields = {"_csrf": page.split('name="_csrf" value="', 1)[1].split('"', 1)[0],
              "user": user, "password": password}
    if next_path is not None:
        fields["next"] = next_path
    conn.request("POST", "/login", body=urllib.parse.urlencode(fields),
                 headers={"Content-Type": "application/x-www-form-urlencoded",
                          "User-Agent": agent, "Cookie": cookie})
    resp = conn.getresponse()
    body = resp.read().decode()
    session = resp.headers.get("Set-Cookie", "").split(";")[0] if resp.status == 303 else ""
    return resp, body, session


def post(conn, path, body, token=None):
    """POST a form body; returns (status, text)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "python-test"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read().decode("utf-8", "replace")


@pytest.fixture
def browser():
    """A real headless Chromium (Debian's), stopped after the test."""
    from browser_driver import available, start_browser, stop_browser
    missing = available()
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)
    driver = start_browser()
    try:
        yield driver
    finally:
        stop_browser(driver)


@pytest.fixture
def portal(appliance_factory):
    """A running appliance with alice, who logs in with a password."""
    app = appliance_factory()
    app.cli("user", "add", "alice", "--password", "first-password")
    app.start()
    return app


def write_home_file(user, rel, data):
    """Put a file straight into a user's home (text or bytes), parents made."""
    path = os.path.join(user["home"], rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return path


def set_config(state, **values):
    """Change settings in a state folder's config.ini (before the appliance starts)."""
    import re
    path = os.path.join(state, "config.ini")
    with open(path) as handle:
        text = handle.read()
    for key, value in values.items():
        text, found = re.subn(r"^%s = .*$" % key, "%s = %s" % (key, value), text, flags=re.M)
        assert found == 1, key
    with open(path, "w") as handle:
        handle.write(text)


def post_backend(app, user, name, fields):
    """POST a backend with the user's certificate as a script would (output_format
    txt, no CSRF token); unlike Appliance.backend, values are sent as they are."""
    import urllib.parse
    conn = https_connection(app, user)
    try:
        conn.request("POST", "/cgi-bin/%s.py" % name,
                     body=urllib.parse.urlencode(list(fields) + [("output_format", "txt")]),
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "User-Agent": "python-test"})
        return conn.getresponse().read().decode("utf-8", "replace")
    finally:
        conn.close()


BOGUS_HOSTKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBogusBogusBogusBogusBogusBogusBogusBogus"


def resource_conf(host, *units, port=None, key=BOGUS_HOSTKEY, identifier=True, note=None,
                  user="gridu", home=None, before=(), after=()):
    """A MiG resource configuration as an owner writes one, for the account
    ``user`` with RESOURCEHOME ``home`` (default /home/USER/mig).  ``units``
    are the EXECONFIG blocks as lists of key=value lines; ``before`` and
    ``after`` are extra (KEYWORD, value) blocks placed before MIGUSER and
    after RESOURCEHOME.  The tests edit the text with str.replace, so each
    value stands on its own line."""
    blocks = [("HOSTURL", host)]
    if identifier:
        blocks.append(("HOSTIDENTIFIER", "AUTO"))
    if key is not None:
        blocks.append(("HOSTKEY", key))
    if port is not None:
        blocks.append(("SSHPORT", str(port)))
    blocks += list(before) + [("MIGUSER", user),
                              ("RESOURCEHOME", home or "/home/%s/mig" % user)]
    blocks += list(after)
    blocks += [("EXECONFIG", "\n".join(unit)) for unit in units]
    text = "\n".join("::%s::\n%s\n" % block for block in blocks)
    if note is not None:  # a comment just before the host key (or the first block)
        mark = "::HOSTKEY::" if key is not None else "::HOSTURL::"
        text = text.replace(mark, "# %s\n%s" % (note, mark), 1)
    return text


def grid_with_vgrid(appliance_factory, names, members, **settings):
    """A running appliance with users names (the first creates the VGrid Lab and
    owns it); members: {user: VGrid} added by the owner (Lab/Sub is created
    first when named); settings: config.ini values.  Returns (app, users)."""
    app = appliance_factory()
    users = {name: app.add_user(name) for name in names}
    if settings:
        set_config(app.state, **settings)
    app.start()
    owner = users[names[0]]
    for vgrid in ["Lab"] + sorted({v for v in members.values() if v != "Lab"}):
        reply = post_backend(app, owner, "createvgrid", [("vgrid_name", vgrid)])
        assert exit_code(reply) == 0, reply
    for who, vgrid in members.items():
        reply = post_backend(app, owner, "addvgridmember", [("vgrid_name", vgrid),
                                                            ("cert_id", who)])
        assert exit_code(reply) == 0, reply
    return app, users


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(tmp_path):
    """OpenSMTPD on 127.0.0.1:PORT that takes mail for anyone into a maildir of
    this test (delivered as nobody: smtpd delivers to no maildir as root)."""
    import pwd
    import shutil
    import tempfile
    require_tool("/usr/sbin/smtpd", "apt-get install opensmtpd")
    nobody = pwd.getpwnam("nobody")
    mailroot = tempfile.mkdtemp(prefix="mig-smtp-")
    os.chown(mailroot, nobody.pw_uid, nobody.pw_gid)
    port, maildir = free_port(), tmp_path.__class__(mailroot) / "Maildir"
    conf = tmp_path / "smtpd.conf"
    conf.write_text('table catchall { "@" = "nobody" }\n'
                    "listen on 127.0.0.1 port %d\n"
                    'action "store" maildir "%s" virtual <catchall>\n'
                    'match from any for any action "store"\n' % (port, maildir))
    os.chmod(conf, 0o600)
    proc = subprocess.Popen(["/usr/sbin/smtpd", "-d", "-f", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def listening():
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0
        wait_for(listening, 20, what="smtpd to listen")
        yield port, maildir
    finally:
        stop_pid(proc)
        proc.stdout.close()
        shutil.rmtree(mailroot, ignore_errors=True)


def register_resource(app, conf, owner):
    """Register a resource configuration as the operator does (the CLI), for owner."""
    path = os.path.join(app.state, "resource-%d.conf" % time.time_ns())
    with open(path, "w") as handle:
        handle.write(conf)
    app.cli("resource", "add", "--conf", path, "--owner", owner)


def table_rows(app, user, page, kind):
    """The rows of a page's table of that kind, read as JSON (/api/PAGE)."""
    objects = json.loads(app.curl(user, "URL/api/%s" % page))
    return [o for o in objects if o.get("kind") == kind][0]["rows"], objects
