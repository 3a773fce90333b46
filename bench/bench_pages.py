#!/usr/bin/env python3
"""Server time of every portal page with 1,000,000 jobs in the store.

Goal (issue): every page returns in under 200 ms server time with 1,000,000
jobs in the store.  The hard case is one user, ``heavy``, who owns all of
them.  The state folder is generated once under build/ and reused:

* users ``heavy`` and ``light`` are made with ``migappliance.py user add``
  (with passwords), then the job records are stored through the appliance's
  own job store (``JobStore.put`` in batches: journal and job database, as
  the appliance stores them), with a fixed seed;
* heavy: 1,000,000 jobs received over the last 60 days, mostly FINISHED,
  some FAILED/CANCELED/EXPIRED, a few hundred QUEUED among the newest.
  The QUEUED ones ask for ARCHITECTURE SPARC, which no resource offers, so
  they stay QUEUED (EXECUTING needs a running job: none here);
* light: 10 jobs (7 FINISHED, 1 FAILED, 2 QUEUED) over the last 10 days.

Then the benchmark starts the appliance on that folder (and times the
start: the server reads every record), logs both users in with their
passwords (POST /login, cookie mig_session) and GETs every portal page
(Dashboard, Jobs with paging and filters, the job page, Submit Job, Settings,
the listing pages, Docs, Files, Shell, Sweeps, one job's txt status)
several times on one keep-alive connection per user.  A page whose backend
is not in this version's registry is skipped with a note.  The server time is
the ``Server-Timing: app;dur=<ms>`` header (dispatch: from reading the form
to the rendered body); the client wall time includes TLS and HTTP.

Baseline, same run and server: the same request for ``light`` (10 jobs), so
the ratio shows what the million jobs cost.  The server's RSS (VmRSS,
VmHWM) is read from /proc after the start and after the pages.  The server
is stopped by its PID in a finally block.

    python3 bench/bench_pages.py [--jobs 1000000] [--repeat 5] [--fresh]
                                 [--state build/bench-pages-state] [--json FILE]

``--fresh`` deletes the state folder and generates it again.  Without it the
folder is reused when its marker (bench_pages.json, written last) matches
--jobs and the seed and is less than 30 days old.  The server's stderr goes
to build/bench-pages-server.stderr.  Not part of ``make bench``: too slow.
On the 2-core reference VM generating takes about 2 minutes; the appliance
starts in about a second (it reads only the jobs not final, see
docs/performance.md); the pages themselves take under 30 s.

Not measured as a page: ``jobstatus.py`` without a job_id, which lists every
job of the caller (a script API; for heavy that is 1,000,000 jobs).
"""

import bisect
import datetime
import http.client
import json
import os
import random
import shutil
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

sys.path.insert(0, C.REPO)

from mig import config as cfg  # noqa: E402
from mig.core import jobs as J  # noqa: E402
from mig.core import jobspec  # noqa: E402
from mig.core.resources import LOCAL_EXE, LOCAL_RESOURCE  # noqa: E402
from mig.core.jobstore import JobStore  # noqa: E402
from mig.store.pickledb import PickleStore  # noqa: E402

GOAL_MS = 200.0
SEED = 20261122
MARKER = "bench_pages.json"
MARKER_FORMAT = 2  # 2: jobs in the job database (1: one record file each)
MAX_AGE_DAYS = 30  # older states: QUEUED jobs near expire_after, the 14-day chart empties
DEFAULT_STATE = os.path.join(C.REPO, "build", "bench-pages-state")
PASSWORDS = {"heavy": "heavy-bench-password", "light": "light-bench-password"}
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) bench_pages"
START_TIMEOUT = 1200.0
DAY = 86400.0
SPAN_DAYS = 60
QUEUED_JOBS = 300
QUEUED_AMONG_NEWEST = 2000
LIGHT_JOBS = (("FINISHED",) * 7) + ("FAILED", "QUEUED", "QUEUED")
KINDS = (("blast", "blastp -query q{n}.fa -db nr -out hits{n}.txt"),
         ("render", "povray +Iscene{n}.pov +Oframe{n}.png +W1920 +H1080"),
         ("md-sim", "gmx mdrun -deffnm run{n} -nt 1"),
         ("fit", "python3 fit.py --seed {n} --out fit{n}.json"),
         ("align", "bwa mem ref.fa reads{n}.fq > aln{n}.sam"),
         ("train", "python3 train.py --epochs 3 --fold {n}"))
UNIT_ID = "%s_%s" % (LOCAL_RESOURCE, LOCAL_EXE)
IO_STATUS = [("get_input_files", 0), ("get_executables", 0), ("output_files_missing", 0),
             ("send_output_files", 0)]


# -- generating the state folder ------------------------------------------------------
def _mrsl(name, command, sparc):
    text = ""
    if name:
        text += "::JOBNAME::\n%s\n\n" % name
    text += "::EXECUTE::\n%s\n\n::OUTPUTFILES::\nresult.txt\n" % command
    if sparc:
        text += "\n::ARCHITECTURE::\nSPARC\n"
    return text


def _templates(job_retries):
    """One parsed spec per (sparc?) to copy: parse_mrsl a million times takes too long."""
    return {sparc: jobspec.parse_job(_mrsl("NAME", "CMD", sparc), job_retries)
            for sparc in (False, True)}


class Maker:
    """Builds one job record the way JobService and the grid daemon leave it."""

    def __init__(self, rng, server_id, templates, now):
        self.rng, self.server_id, self.templates, self.now = rng, server_id, templates, now

    def make(self, counter, owner, state, received):
        rng = self.rng
        kind, command = KINDS[rng.randrange(len(KINDS))]
        number = rng.randrange(100000)
        name = "" if rng.random() < 0.1 else "%s-%05d" % (kind, number)
        command = command.format(n=number)
        sparc = state in ("QUEUED", "EXPIRED")
        spec = dict(self.templates[sparc])
        spec["JOBNAME"], spec["EXECUTE"] = name, [command]
        spec["OUTPUTFILES"] = list(spec["OUTPUTFILES"])
        job_id = J.make_job_id(counter, received, self.server_id)
        history = [("PARSE", received, "received"), ("QUEUED", received, "queued")]
        record = {"JOB_ID": job_id, "OWNER": owner, "STATUS": state, "SPEC": spec,
                  "MRSL": _mrsl(name, command, sparc), "RECEIVED_TIMESTAMP": received,
                  "PARSE_TIMESTAMP": received, "QUEUED_TIMESTAMP": received,
                  "CHANGED": received, "RETRY_COUNT": 0, "HISTORY": history,
                  "EXECUTION_HISTORY": [], "IDEMPOTENCY_KEY": None}
        latest = self.now - 1.0
        if state in ("FINISHED", "FAILED"):
            start = min(received + rng.expovariate(1 / 120.0), latest)
            end = min(start + rng.uniform(1.0, 3600.0), latest)
            record.update(UNIQUE_RESOURCE_NAME=LOCAL_RESOURCE, EXE=LOCAL_EXE, EXECUTOR="local",
                          RESOURCE_ID=UNIT_ID, EXECUTING_TIMESTAMP=start)
            history.append(("EXECUTING", start, "on %s" % UNIT_ID))
            if state == "FINISHED":
                record.update(FINISHED_TIMESTAMP=end, CHANGED=end, VERIFIED="NO",
                              EXIT_CODES=[(command, 0)], IO_STATUS=list(IO_STATUS))
                history.append(("FINISHED", end, "finished"))
            else:
                message = ("LOCAL: command exited with 137 (killed: out of memory) "
                           "(gave up after 2 retries)")
                record.update(FAILED_TIMESTAMP=end, CHANGED=end, RETRY_COUNT=3,
                              FAILED_MESSAGE=message, EXIT_CODES=[(command, 137)],
                              EXECUTION_HISTORY=[{"resource": UNIT_ID, "executing": start,
                                                  "failed": end, "message": "exit 137"}] * 3)
                history.append(("FAILED", end, message))
        elif state == "CANCELED":
            end = min(received + rng.uniform(5.0, 600.0), latest)
            message = "cancel by %s" % owner
            record.update(CANCELED_TIMESTAMP=end, CHANGED=end, CANCELED_MESSAGE=message)
            history.append(("CANCELED", end, message))
        elif state == "EXPIRED":
            end = min(received + DAY, latest)
            message = ("EXPIRED: no resource can run this job (%s: ARCHITECTURE SPARC is "
                       "not AMD64)" % UNIT_ID)
            record.update(EXPIRED_TIMESTAMP=end, CHANGED=end, EXPIRED_MESSAGE=message)
            history.append(("EXPIRED", end, message))
        return record


def _heavy_state(rng, index, newest_queued):
    if index in newest_queued:
        return "QUEUED"
    roll = rng.random()
    if roll < 0.02:
        return "FAILED"
    if roll < 0.03:
        return "CANCELED"
    if roll < 0.035:
        return "EXPIRED"
    return "FINISHED"


def _user_add(state, name):
    made = subprocess.run(
        [C.PYTHON, C.ENTRY, "user", "add", name, "--password", PASSWORDS[name], "--json",
         "--state", state], cwd=C.REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, timeout=300)
    if made.returncode != 0:
        raise C.BenchError("user add %s failed (%d): %s"
                           % (name, made.returncode, made.stderr.strip()))
    return json.loads(made.stdout)


def generate(state, jobs, seed=SEED):
    """Make the state folder: two users, then the job record files; returns the marker."""
    started = time.perf_counter()
    now = time.time()
    os.makedirs(os.path.dirname(state), exist_ok=True)
    for name in ("heavy", "light"):
        _user_add(state, name)
    users_seconds = time.perf_counter() - started
    config = cfg.load(state)
    store = PickleStore(config.path("db"))
    rng = random.Random(seed)
    # Times in submission order: heavy's jobs over 60 days, light's 10 over the
    # last 10 days; job counters follow the time, as a real server gives them.
    span = SPAN_DAYS * DAY
    times = [now - span + rng.random() * (span - 60.0) for _ in range(jobs)]
    light_times = [now - 10 * DAY + rng.random() * (10 * DAY - 60.0) for _ in LIGHT_JOBS]
    times.sort()
    owners = []  # the few light jobs, by their position in the merged timeline
    for when in sorted(light_times):
        position = bisect.bisect(times, when)
        times.insert(position, when)
        owners.append(position)
    light_at = set(owners)
    newest_heavy = [i for i in range(len(times) - QUEUED_AMONG_NEWEST, len(times))
                    if i not in light_at]
    newest_queued = set(rng.sample(newest_heavy, QUEUED_JOBS))
    maker = Maker(rng, config.server_id, _templates(config.job_retries), now)
    jobstore = open_jobstore(store)
    batch = []
    counts = {"heavy": {}, "light": {}}
    samples = {"heavy": {}, "light": {}}
    light_states = iter(LIGHT_JOBS)
    checked, name_sample = 0, None
    for counter, received in enumerate(times):
        if counter in light_at:
            owner, state_name = "light", next(light_states)
        else:
            owner, state_name = "heavy", _heavy_state(rng, counter, newest_queued)
        record = maker.make(counter, owner, state_name, received)
        if checked < 20:  # the copied specs are what the parser makes of the text
            if record["SPEC"] != jobspec.parse_job(record["MRSL"], config.job_retries):
                raise C.BenchError("generated spec differs from parse_job: %s" % record["MRSL"])
            checked += 1
        job_id = record["JOB_ID"]
        batch.append(record)
        if len(batch) >= BATCH:
            jobstore.put(batch, durable=False)
            batch = []
        if owner == "heavy" and name_sample is None and counter >= len(times) // 2 and \
                state_name == "FINISHED" and record["SPEC"]["JOBNAME"]:
            name_sample = record["SPEC"]["JOBNAME"]
        per_user = counts[owner]
        per_user[state_name] = per_user.get(state_name, 0) + 1
        samples[owner].setdefault(state_name, []).append(job_id)
        if counter and counter % 200000 == 0:
            jobstore.checkpoint()  # as the appliance's checkpoint daemon would
            print("  ... %d records in %.0f s" % (counter, time.perf_counter() - started),
                  flush=True)
    jobstore.put(batch, durable=False)
    jobstore.close()  # a checkpoint: the database synced, the journal dropped
    picked = {}
    for owner, by_state in samples.items():
        finished, queued = by_state["FINISHED"], by_state["QUEUED"]
        picked[owner] = {"finished": finished[len(finished) // 2],
                         "queued": queued[len(queued) // 2]}
    seconds = time.perf_counter() - started
    marker = {"format": MARKER_FORMAT, "jobs": jobs, "seed": seed, "generated_at": now,
              "generation_seconds": round(seconds, 1), "users_seconds": round(users_seconds, 1),
              "counts": counts, "samples": picked, "server_id": config.server_id,
              "name_sample": name_sample}
    with open(os.path.join(state, MARKER), "w", encoding="utf-8") as handle:
        json.dump(marker, handle, indent=1)
    return marker


BATCH = 5000  # records per journal write and database transaction


def open_jobstore(store):
    """The appliance's own job store in a state folder (see JobService)."""
    return JobStore(os.path.join(store.root, "jobdb"), J.row_of, seq_of=J.job_counter)


def remove_state(state):
    """The state folder and its job work folder (outside it when running as root)."""
    started = time.perf_counter()
    work = cfg.load(state).work_root if os.path.exists(os.path.join(state, "config.ini")) \
        else None
    for path in (state, work):
        if path and os.path.isdir(path):
            shutil.rmtree(path)
    return time.perf_counter() - started


def ensure_state(state, jobs, fresh):
    """(marker, reused?, seconds spent deleting an old folder)."""
    marker_path = os.path.join(state, MARKER)
    reason = "--fresh"
    if not fresh:
        try:
            with open(marker_path, encoding="utf-8") as handle:
                marker = json.load(handle)
            age = (time.time() - marker["generated_at"]) / DAY
            if marker.get("format") != MARKER_FORMAT or marker.get("jobs") != jobs or \
                    marker.get("seed") != SEED:
                reason = "its marker is for other settings"
            elif age > MAX_AGE_DAYS:
                reason = "it is %.0f days old" % age
            else:
                return marker, True, 0.0
        except FileNotFoundError:
            reason = "no complete state folder yet"
        except (ValueError, KeyError) as exc:
            reason = "unreadable marker (%s)" % exc
    removed = 0.0
    if os.path.exists(state):
        print("deleting the old state folder %s (%s) ..." % (state, reason), flush=True)
        removed = remove_state(state)
    print("generating %d jobs into %s (%s) ..." % (jobs, state, reason), flush=True)
    return generate(state, jobs), False, removed


# -- the server -------------------------------------------------------------------------
class Server:
    def __init__(self, state):
        self.state = state
        self.proc = None
        self.port = None
        self.lines = []
        self.stderr = None
        self.start_seconds = None

    def start(self):
        self.stderr = open(os.path.join(os.path.dirname(self.state),
                                        "bench-pages-server.stderr"), "w+b")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [C.PYTHON, C.SERVE_ENTRY, "serve", "--state", self.state, "--port", "0"],
            cwd=C.REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr)
        box = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        self.start_seconds = time.perf_counter() - started
        first = box[0].decode("utf-8", "replace").strip() if box else ""
        if not first.startswith("MiG appliance ") or " serving https://" not in first:
            raise C.BenchError("the server did not start within %d s: %r%s"
                               % (START_TIMEOUT, first, self.stderr_tail()))
        self.port = int(first.rsplit(":", 1)[1].strip("/"))

        def drain():
            for line in self.proc.stdout:
                self.lines.append(line.decode("utf-8", "replace").rstrip())
        threading.Thread(target=drain, daemon=True).start()
        return self

    def stderr_tail(self, limit=2000):
        try:
            self.stderr.flush()
            self.stderr.seek(0)
            text = self.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError, AttributeError):
            return ""
        return ("\n--- server stderr ---\n" + text[-limit:]) if text.strip() else ""

    def memory(self):
        """{'VmRSS': MB, 'VmHWM': MB} of the server process."""
        found = {}
        with open("/proc/%d/status" % self.proc.pid, encoding="ascii") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) / 1024.0
        return found

    def stop(self):
        try:
            C.stop_pid(self.proc, timeout=60)
        finally:
            if self.stderr is not None:
                self.stderr.close()


class Portal:
    """One browser-like session (password login, cookie) on a keep-alive connection."""

    def __init__(self, port, ca_file):
        ctx = ssl.create_default_context(cafile=ca_file)
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=600)
        self.cookie = ""

    def request(self, method, path, body=None):
        headers = {"User-Agent": BROWSER_AGENT}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        wall = time.perf_counter() - started
        return resp, data, wall

    def login(self, user, password):
        """Load the form first, as a browser does: POST /login needs its CSRF token."""
        resp, data, _wall = self.request("GET", "/login")
        self.cookie = (resp.getheader("Set-Cookie") or "").split(";", 1)[0]
        token = data.decode().split('name="_csrf" value="', 1)[-1].split('"', 1)[0]
        resp, data, _wall = self.request("POST", "/login", urllib.parse.urlencode(
            {"_csrf": token, "user": user, "password": password}))
        cookie = resp.getheader("Set-Cookie") or ""
        if resp.status != 303 or not cookie.startswith("mig_session="):
            raise C.BenchError("login as %s failed (HTTP %d): %s"
                               % (user, resp.status, data[:300]))
        self.cookie = cookie.split(";", 1)[0]

    def page(self, path):
        """(server ms, wall ms, bytes) of one GET; raises on an error reply."""
        resp, data, wall = self.request("GET", path)
        timing = resp.getheader("Server-Timing") or ""
        text = data.decode("utf-8", "replace")
        failed = resp.status != 200 or not timing.startswith("app;dur=")
        if "output_format=txt" in path:
            failed = failed or not text.startswith("Exit code: 0 ")
        else:
            failed = failed or 'role="alert"' in text
        if failed:
            raise C.BenchError("GET %s failed (HTTP %d, %r): %s"
                               % (path, resp.status, timing, text[:300]))
        return float(timing[len("app;dur="):].split(",")[0]), wall * 1000.0, len(data)

    def close(self):
        self.conn.close()


# -- the pages ---------------------------------------------------------------------------
def day_text(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d")


def pages(samples, name_part, now):
    """[(label, path for the user)]: samples is the user's {'finished', 'queued'} ids."""
    since, until = day_text(now - 21 * DAY), day_text(now - 14 * DAY)
    return [
        ("dashboard", lambda s: "/cgi-bin/dashboard.py"),
        ("jobman page 1", lambda s: "/cgi-bin/jobman.py"),
        ("jobman page 100", lambda s: "/cgi-bin/jobman.py?page=100"),
        ("jobman state=QUEUED", lambda s: "/cgi-bin/jobman.py?state=QUEUED"),
        ("jobman state=FINISHED page 5", lambda s: "/cgi-bin/jobman.py?state=FINISHED&page=5"),
        ("jobman name=%s" % name_part,
         lambda s: "/cgi-bin/jobman.py?" + urllib.parse.urlencode({"name": name_part})),
        ("jobman since..until (8 days)",
         lambda s: "/cgi-bin/jobman.py?" + urllib.parse.urlencode({"since": since,
                                                                   "until": until})),
        ("jobview FINISHED job", lambda s: "/cgi-bin/jobview.py?job_id=" + s["finished"]),
        ("jobview QUEUED job", lambda s: "/cgi-bin/jobview.py?job_id=" + s["queued"]),
        ("submitjob (fields)", lambda s: "/cgi-bin/submitjob.py"),
        ("submitjob style=textarea", lambda s: "/cgi-bin/submitjob.py?style=textarea"),
        ("settings", lambda s: "/cgi-bin/settings.py"),
        ("resources", lambda s: "/cgi-bin/resources.py"),
        ("runtimeenvs", lambda s: "/cgi-bin/runtimeenvs.py"),
        ("vgrids", lambda s: "/cgi-bin/vgrids.py"),
        ("people", lambda s: "/cgi-bin/people.py"),
        ("downloads", lambda s: "/cgi-bin/downloads.py"),
        ("docs topic=mrsl", lambda s: "/cgi-bin/docs.py?topic=mrsl"),
        ("fileman", lambda s: "/cgi-bin/fileman.py"),
        ("shell", lambda s: "/cgi-bin/shell.py"),
        ("sweepstatus (no sweeps)", lambda s: "/cgi-bin/sweepstatus.py"),
        ("jobstatus one job (txt)",
         lambda s: "/cgi-bin/jobstatus.py?output_format=txt&job_id=" + s["finished"]),
    ]


def measure(portal, path, repeat):
    portal.page(path)  # warm-up: caches (du of the home, record pages) as a user sees them
    server, wall, size = [], [], 0
    for _ in range(repeat):
        s, w, size = portal.page(path)
        server.append(s)
        wall.append(w)
    return {"server_median": statistics.median(server), "server_max": max(server),
            "wall_median": statistics.median(wall), "bytes": size, "server": server}


def fmt_ms(value):
    return "%.1f" % value if value < 100 else "%.0f" % value


def cell(figures, key):
    return "ERROR" if "error" in figures else fmt_ms(figures[key])


def main(argv=None):
    parser = C.parser(__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000000,
                        help="heavy's jobs (default 1000000)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="measured requests per page and user, after one warm-up (default 5)")
    parser.add_argument("--state", default=DEFAULT_STATE,
                        help="state folder to generate or reuse (default build/bench-pages-state)")
    parser.add_argument("--fresh", action="store_true",
                        help="delete the state folder and generate it again")
    args = parser.parse_args(argv)
    C.exit_on_sigterm()
    state = os.path.abspath(args.state)
    total = time.perf_counter()
    marker, reused, removed = ensure_state(state, args.jobs, args.fresh)
    prepare_seconds = time.perf_counter() - total
    if reused:
        print("reusing %s (generated %s UTC in %.0f s)"
              % (state, time.strftime("%Y-%m-%d %H:%M", time.gmtime(marker["generated_at"])),
                 marker["generation_seconds"]), flush=True)
    else:
        print("generated in %.1f s (users %.1f s)" % (marker["generation_seconds"],
                                                       marker["users_seconds"]), flush=True)
    now = time.time()
    server = Server(state)
    results, skipped = [], []
    try:
        print("starting the appliance ...", flush=True)
        server.start()
        memory_start = server.memory()
        print("started in %.1f s, VmRSS %.0f MB" % (server.start_seconds,
                                                   memory_start["VmRSS"]), flush=True)
        ca_file = os.path.join(state, "ca", "ca.crt")
        portals = {}
        for user in ("heavy", "light"):
            portals[user] = Portal(server.port, ca_file)
            portals[user].login(user, PASSWORDS[user])
        # a name filter that matches a handful of heavy's jobs: a name less its last digit
        # matches a handful of heavy's jobs: a job's name less its last digit
        name_part = marker["name_sample"][:-1]
        pages_started = time.perf_counter()
        for label, path_for in pages(marker["samples"]["heavy"], name_part, now):
            row = {"page": label}
            for user in ("heavy", "light"):
                path = path_for(marker["samples"][user])
                try:
                    row[user] = measure(portals[user], path, args.repeat)
                except C.BenchError as exc:
                    row[user] = {"error": str(exc).splitlines()[0][:300]}
                row[user]["path"] = path
            if "no such operation" in row["heavy"].get("error", ""):
                skipped.append((label, "not in the backend registry of this version"))
                continue
            results.append(row)
            print("  %-30s heavy %8s ms   light %6s ms" % (
                label, cell(row["heavy"], "server_median"), cell(row["light"], "server_median")),
                flush=True)
        pages_seconds = time.perf_counter() - pages_started
        memory_end = server.memory()
        for portal in portals.values():
            portal.close()
    finally:
        server.stop()
    return report(args, marker, reused, removed, prepare_seconds, server, memory_start,
                  memory_end, results, skipped, pages_seconds, time.perf_counter() - total)


def report(args, marker, reused, removed, prepare_seconds, server, memory_start, memory_end,
           results, skipped, pages_seconds, total_seconds):
    print()
    print("Server time (Server-Timing app;dur) in ms, median and max of %d requests after one "
          "warm-up;" % args.repeat)
    print("wall = client round trip (median); ratio = heavy / light server median.")
    header = "%-32s %9s %9s %9s %9s %9s %7s  %s" % (
        "page", "heavy med", "heavy max", "wall med", "light med", "light max", "ratio",
        "< 200 ms")
    print(header)
    print("-" * len(header))
    over, errors = [], []
    for row in results:
        heavy, light = row["heavy"], row["light"]
        if "error" in heavy or "error" in light:
            row["ratio"], row["pass"] = None, False
            errors.append(row["page"])
            print("%-32s %9s %9s %9s %9s %9s %7s  %s" % (
                row["page"], cell(heavy, "server_median"), cell(heavy, "server_max"),
                cell(heavy, "wall_median"), cell(light, "server_median"),
                cell(light, "server_max"), "-", "FAIL (error)"))
            continue
        ratio = heavy["server_median"] / max(light["server_median"], 0.01)
        ok = heavy["server_median"] < GOAL_MS
        row["ratio"], row["pass"] = ratio, ok
        if not ok:
            over.append(row["page"])
        note = "" if heavy["server_max"] < GOAL_MS or not ok else " (max over)"
        print("%-32s %9s %9s %9s %9s %9s %7.1f  %s%s" % (
            row["page"], fmt_ms(heavy["server_median"]), fmt_ms(heavy["server_max"]),
            fmt_ms(heavy["wall_median"]), fmt_ms(light["server_median"]),
            fmt_ms(light["server_max"]), ratio, C.verdict(ok), note))
    for label in errors:
        row = next(r for r in results if r["page"] == label)
        for user in ("heavy", "light"):
            if "error" in row[user]:
                print("  error, %s as %s: %s" % (label, user, row[user]["error"]))
    for label, why in skipped:
        print("%-32s skipped: %s" % (label, why))
    print("not measured: jobstatus.py without job_id (a script API listing all %d jobs)"
          % marker["jobs"])
    timed = [r for r in results if "error" not in r["heavy"]]
    slowest = max(timed, key=lambda r: r["heavy"]["server_median"])
    counts = marker["counts"]["heavy"]
    rows = [
        ("machine", C.machine()),
        ("jobs in the store", "heavy %d (%s), light %d" % (
            sum(counts.values()), ", ".join("%s %d" % (s, counts[s]) for s in J.STATES
                                            if s in counts),
            sum(marker["counts"]["light"].values()))),
        ("state folder", "%s %s" % ("reused" if reused else "generated", args.state)),
        ("generation", "%.1f s (%s)" % (marker["generation_seconds"],
                                        "earlier run" if reused else "this run")
         + (", deleting the old folder %.1f s" % removed if removed else "")),
        ("server start (first stdout line)", "%.1f s" % server.start_seconds),
        ("server RSS after start", "%.0f MB (peak %.0f MB)" % (memory_start["VmRSS"],
                                                               memory_start["VmHWM"])),
        ("server RSS after the pages", "%.0f MB (peak %.0f MB)" % (memory_end["VmRSS"],
                                                                   memory_end["VmHWM"])),
        ("pages measured", "%d pages x 2 users x %d (+1 warm-up) in %.1f s"
         % (len(results), args.repeat, pages_seconds)),
        ("slowest page (heavy, median)", "%s: %s ms (light %s ms)" % (
            slowest["page"], fmt_ms(slowest["heavy"]["server_median"]),
            cell(slowest["light"], "server_median"))),
        ("pages over 200 ms (median)", ", ".join(over) or "none"),
        ("pages with an error reply", ", ".join(errors) or "none"),
        ("whole benchmark", "%.0f s (preparing the state %.0f s)" % (total_seconds,
                                                                      prepare_seconds)),
    ]
    result = {"title": "bench_pages: portal pages with %d jobs" % marker["jobs"],
              "rows": rows, "goal": "every page < %d ms server time (median)" % GOAL_MS,
              "pass": not over and not errors, "pages": results, "skipped": skipped,
              "figure": "slowest page %s ms (%s)" % (fmt_ms(slowest["heavy"]["server_median"]),
                                                     slowest["page"]),
              "start_seconds": server.start_seconds, "memory_start": memory_start,
              "memory_end": memory_end, "marker": marker}
    return C.finish(result, args)


if __name__ == "__main__":
    sys.exit(main())
