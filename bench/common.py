"""Shared helpers for the benchmarks (stdlib only).

A benchmark starts a real appliance server as a subprocess on 127.0.0.1
with a throw-away state folder, talks to it over HTTPS with a client
certificate (one keep-alive connection), and stops it by its PID
(SIGTERM, then SIGKILL after a timeout).  Benchmarks are not tests: they
print figures and ratios against a baseline measured in the same run.
"""

import argparse
import fcntl
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY = os.path.join(REPO, "migappliance.py")
# For what-if analysis only: another entry point for `serve` (same CLI), e.g. a
# script that patches the appliance before calling mig.cli.main().
SERVE_ENTRY = os.environ.get("MIG_BENCH_SERVE_ENTRY") or ENTRY
PYTHON = sys.executable or "python3"
USER_AGENT = "python-mig-bench"  # a script agent: no CSRF token needed with a cert
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class BenchError(Exception):
    pass


# -- processes --------------------------------------------------------------------
def stop_pid(proc, timeout=STOP_TIMEOUT):
    """SIGTERM the process by its PID, SIGKILL it if it has not ended in time."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)


def _sigterm(_signum, _frame):
    raise SystemExit("stopped by SIGTERM")


def exit_on_sigterm():
    """Make SIGTERM unwind the stack, so that finally blocks stop our servers."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def spread_new_folders(folder):
    """Ask ext2/3/4 to place each new subfolder in a block group of its own.

    Without a journal, ext4 skips inodes deleted in the last minutes when it
    allocates new ones, group by group; one benchmark's clean-up then makes
    file creation in the next one ten times slower (hundreds of microseconds
    a file).  Folders flagged "top of a hierarchy" spread their subfolders
    over the disk, so each run starts on groups without such deletions.
    Best effort: other file systems just refuse the flag.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        flags = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags)
        value = int.from_bytes(flags[:4], sys.byteorder) | FS_TOPDIR_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, value.to_bytes(4, sys.byteorder) + bytes(4))
    except OSError:
        pass
    finally:
        os.close(fd)


class Appliance:
    """A MiG appliance server in a subprocess, with one user 'bench'.

    with Appliance() as app:  app.port, app.user (the `user add --json` reply)
    """

    def __init__(self, user="bench", keep_state=False, prepare=None):
        self.user_name = user
        self.prepare = prepare  # prepare(state folder) runs before the server starts
        self.keep_state = keep_state
        self.tmp = None
        self.state = None
        self.proc = None
        self.port = None
        self.user = None
        self.stdout_lines = []
        self._stderr = None

    # -- life ---------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc):
        self.stop()

    def start(self):
        exit_on_sigterm()
        # Beside the checkout (like ./mig-state), not in /tmp: on some machines
        # /tmp is much slower to create files in, which is not what we measure.
        scratch = os.environ.get("MIG_BENCH_TMP") or os.path.join(REPO, "build", "bench-runs")
        os.makedirs(scratch, exist_ok=True)
        spread_new_folders(scratch)
        self.tmp = tempfile.mkdtemp(prefix="mig-bench-", dir=scratch)
        # As for ./mig-state: the job folders (state + "-work") sit beside the
        # state folder, which needs a parent that the job user may pass.
        os.chmod(self.tmp, 0o711)
        self.state = os.path.join(self.tmp, "state")
        made = subprocess.run(
            [PYTHON, ENTRY, "user", "add", self.user_name, "--json", "--state", self.state],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        if made.returncode != 0:
            raise BenchError("user add failed (%d): %s" % (made.returncode, made.stderr.strip()))
        self.user = json.loads(made.stdout)
        if self.prepare is not None:
            self.prepare(self.state)
        self._stderr = open(os.path.join(self.tmp, "server.stderr"), "w+b")
        self.proc = subprocess.Popen(
            [PYTHON, SERVE_ENTRY, "serve", "--state", self.state, "--port", "0"],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr)
        first = self._first_line()
        prefix = "MiG appliance "
        if not first.startswith(prefix) or " serving https://" not in first:
            raise BenchError("unexpected first line from the server: %r%s"
                             % (first, self.stderr_tail()))
        url = first.rsplit(" ", 1)[1]
        self.port = int(url.rsplit(":", 1)[1].strip("/"))
        return self

    def _first_line(self):
        """The server's first stdout line; then keep draining stdout in a thread."""
        box = []

        def read_first():
            box.append(self.proc.stdout.readline().decode("utf-8", "replace").strip())
        reader = threading.Thread(target=read_first, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not box:
            raise BenchError("the server printed nothing within %d s%s"
                             % (START_TIMEOUT, self.stderr_tail()))
        if not box[0] and self.proc.poll() is not None:
            raise BenchError("the server exited with %s%s"
                             % (self.proc.returncode, self.stderr_tail()))
        self.stdout_lines.append(box[0])

        def drain():
            for line in self.proc.stdout:
                self.stdout_lines.append(line.decode("utf-8", "replace").rstrip())
        threading.Thread(target=drain, daemon=True).start()
        return box[0]

    def stderr_tail(self, limit=2000):
        if self._stderr is None:
            return ""
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return ("\n--- server stderr ---\n" + text[-limit:]) if text.strip() else ""

    def stop(self):
        try:
            stop_pid(self.proc)
        finally:
            if self._stderr is not None:
                self._stderr.close()
            if self.tmp and not self.keep_state:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # -- clients ------------------------------------------------------------------
    def ssl_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(self.state, "ca", "ca.crt"))
        ctx.load_cert_chain(self.user["cert"], self.user["key"])
        return ctx

    def connect(self):
        return Client("127.0.0.1", self.port, self.ssl_context())


# -- HTTP -----------------------------------------------------------------------------
class Client:
    """One keep-alive HTTPS connection to the appliance (client certificate auth)."""

    def __init__(self, host, port, context, timeout=60.0):
        self.conn = http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
        self.conn.connect()
        # as curl does: the client never holds back a small write (Nagle), so
        # any delayed-ACK stall measured comes from the server's side
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.conn.sock

    def post_body(self, path, body):
        """POST a urlencoded body; returns (HTTP status, reply text)."""
        self.conn.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.will_close or self.conn.sock is not self.sock:
            raise BenchError("the server closed the keep-alive connection")
        return resp.status, data.decode("utf-8", "replace")

    def post(self, path, fields):
        return self.post_body(path, urlencode(fields))

    def close(self):
        self.conn.close()


def urlencode(fields):
    """fields: dict or list of pairs (repeated keys allowed)."""
    return urllib.parse.urlencode(list(fields.items()) if isinstance(fields, dict) else fields)


def submit_body(mrsl, count=1):
    """A textarea body with count copies of the job (mrsltextarea_0 ... _N)."""
    return urlencode([("output_format", "txt")] +
                     [("mrsltextarea_%d" % i, mrsl) for i in range(count)])


def check_txt_ok(status, text):
    first = text.split("\n", 1)[0]
    if status != 200 or not first.startswith("Exit code: 0 Description OK"):
        raise BenchError("unexpected reply (HTTP %d): %s" % (status, text[:400]))


def submit_job_ids(status, text):
    """The job ids from a txt textarea reply (its 'textarea 1 JOBID' table rows)."""
    check_txt_ok(status, text)
    ids = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "textarea" and parts[1] == "1":
            ids.append(parts[2])
    if not ids:
        raise BenchError("no job id in the submit reply: %s" % text[:400])
    return ids


def submit_job_id(status, text):
    return submit_job_ids(status, text)[0]


def submit(client, mrsl):
    return submit_job_id(*client.post_body("/cgi-bin/textarea.py", submit_body(mrsl)))


def submit_many(client, mrsl, count):
    """Submit count copies of a job in one request (MiG's numbered textareas)."""
    ids = submit_job_ids(*client.post_body("/cgi-bin/textarea.py", submit_body(mrsl, count)))
    if len(ids) != count:
        raise BenchError("asked for %d jobs, got %d ids" % (count, len(ids)))
    return ids


def json_objects(client, backend, fields):
    """The MiG objects of one json backend call; a failed call raises BenchError."""
    status, text = client.post("/cgi-bin/%s.py" % backend,
                               [("output_format", "json")] + list(fields))
    if status != 200:
        raise BenchError("%s failed (HTTP %d): %s" % (backend, status, text[:400]))
    objects = json.loads(text)
    if objects[0].get("exit_code") != 0:
        raise BenchError("%s failed: %s" % (backend, text[:400]))
    return objects


def job_states(client, job_ids):
    """{job_id: status} through json jobstatus requests (1,000 jobs a reply:
    the next ones with offset=)."""
    states = {}
    while True:
        found = 0
        for obj in json_objects(client, "jobstatus", [("job_id", j) for j in job_ids]
                                + [("offset", str(len(states)))]):
            if obj.get("object_type") == "job_list":
                for job in obj["jobs"]:
                    states[job["job_id"]] = job["status"]
                    found += 1
        if found < 1000:
            return states


class ChangeFeed:
    """Follows job states through ``jobchanges`` (one cheap call per poll for
    what changed, as a script following many jobs should), not ``jobstatus``
    of every job still pending.  Each reply's ``now`` is the next poll's
    ``since``: the server keeps it below any change still being written."""

    def __init__(self, client):
        self.client = client
        self.since = 0.0
        self.states = {}

    def poll(self):
        """{job_id: newest status} for every job that changed since the last poll."""
        changed = {}
        for obj in json_objects(self.client, "jobchanges", [("since", "%.6f" % self.since)]):
            if obj.get("object_type") == "text" and obj["text"].startswith("now: "):
                self.since = float(obj["text"][5:])
            elif obj.get("object_type") == "table" and obj.get("kind") == "changedjobs":
                for job_id, state, _changed, _utc in obj["rows"]:
                    changed[job_id] = state
        self.states.update(changed)
        return changed


def trivial_job(command="echo hello"):
    return "::EXECUTE::\n%s\n\n::RETRIES::\n0\n" % command


FINAL = ("FINISHED", "FAILED", "CANCELED", "EXPIRED")


# -- figures --------------------------------------------------------------------------
def percentile(values, fraction):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))  # ceil
    return ordered[min(rank, len(ordered)) - 1]


try:
    LOAD_AT_START = "1-min load %.2f at start" % os.getloadavg()[0]
except OSError:
    LOAD_AT_START = "load unknown"


def machine():
    load = LOAD_AT_START
    return "%s, %d cores, Python %s, %s" % (platform.platform(terse=True), os.cpu_count() or 1,
                                            platform.python_version(), load)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the result as JSON to FILE (used by run_all.py)")
    return p


def finish(result, args):
    """Print the result block and write it as JSON when asked."""
    print()
    print("== %s ==" % result["title"])
    for label, value in result["rows"]:
        print("  %-34s %s" % (label, value))
    print("  %-34s %s" % ("goal", result["goal"]))
    print("  %-34s %s" % ("result", verdict(result["pass"])))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    return 0


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_exc):
        self.seconds = time.perf_counter() - self.start
