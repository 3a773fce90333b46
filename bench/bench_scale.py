#!/usr/bin/env python3
"""The job store at scale: an empty store, 100,000 and 1,000,000 jobs.

For each size a state folder is filled once (under build/, reused while its
marker matches) through the appliance's own store code (``JobStore.put`` in
batches, then a checkpoint), with realistic jobs: 40 owners, of whom
``heavy`` owns 60% (MiG's busiest user had 277,210 jobs), names and commands
of six kinds, mostly FINISHED with some FAILED, CANCELED and EXPIRED, a few
hundred QUEUED, and one job in ten part of a 1,000-job parameter sweep.
Then, for each size, the benchmark starts the appliance and measures:

* start-up to the first answered request, warm, and cold (after
  ``sync; echo 3 > /proc/sys/vm/drop_caches``, as root);
* RSS after start-up and after an hour's worth of mixed requests (3,600:
  jobchanges polls, dashboards, Jobs pages, name searches, job statuses,
  submissions), VmHWM too;
* server time (``Server-Timing``) of the dashboard counts, one page of the
  Jobs list (the first and one deep page), a name search and ``jobchanges``;
* submissions per second over one connection, with the servers of every
  size up at once and measured in turn (nine rounds, the median).

The empty store, measured in the same run, is the baseline; goals at
1,000,000 jobs (docs/performance.md): start-up < 2 s warm and < 10 s cold,
RSS < 250 MB, counts < 50 ms, a Jobs page < 100 ms, submit rate within 10%
of the empty store.

    python3 bench/bench_scale.py [--sizes 0,100000,1000000] [--fresh]

Not part of ``make bench``: filling a million jobs takes a few minutes.
"""

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_pages as P  # noqa: E402
import common as C  # noqa: E402

from mig import config as cfg  # noqa: E402
from mig.store.pickledb import PickleStore  # noqa: E402

SEED = 20261203
MARKER = "bench_scale.json"
MARKER_FORMAT = 1
OWNERS = 40
HEAVY_SHARE = 0.6
SWEEP_SHARE = 0.1
SWEEP_SIZE = 1000
MIXED_REQUESTS = 3600
SUBMITS = 400
GOALS = {"start_warm": 2.0, "start_cold": 10.0, "rss_mb": 250.0, "counts_ms": 50.0,
         "page_ms": 100.0, "submit_ratio": 0.9}
MRSL = "::JOBNAME::\nscale-probe\n\n::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n"


def state_folder(size):
    return os.path.join(C.REPO, "build", "bench-scale-%d" % size)


def generate(state, size, seed=SEED):
    """Users heavy and light, then `size` jobs through the job store."""
    started = time.perf_counter()
    now = time.time()
    os.makedirs(os.path.dirname(state), exist_ok=True)
    users = {name: P._user_add(state, name) for name in ("heavy", "light")}
    config = cfg.load(state)
    store = PickleStore(config.path("db"))
    jobstore = P.open_jobstore(store)
    rng = random.Random(seed)
    maker = P.Maker(rng, config.server_id, P._templates(config.job_retries), now)
    others = ["/C=DK/O=Grid/CN=user%02d" % n for n in range(OWNERS - 2)]
    span = P.SPAN_DAYS * P.DAY
    times = sorted(now - span + rng.random() * (span - 60.0) for _ in range(size))
    queued_from = max(0, size - 2000)
    batch, sweep, sweep_left, names = [], None, 0, []
    for counter, received in enumerate(times):
        if rng.random() < HEAVY_SHARE:
            owner = "heavy"
        else:
            owner = others[min(int(rng.paretovariate(1.2)) - 1, len(others) - 1)]
        state_name = "QUEUED" if counter >= queued_from and rng.random() < 0.15 else \
            P._heavy_state(rng, counter, ())
        record = maker.make(counter, owner, state_name, received)
        if sweep_left == 0 and rng.random() < SWEEP_SHARE / SWEEP_SIZE * 10:
            sweep, sweep_left = "sweep_%d_%d" % (counter, int(received)), SWEEP_SIZE // 10
        if sweep_left:
            record["SWEEP"] = sweep
            sweep_left -= 1
        if owner == "heavy" and record["SPEC"]["JOBNAME"] and len(names) < 50:
            names.append(record["SPEC"]["JOBNAME"])
        batch.append(record)
        if len(batch) >= P.BATCH:
            jobstore.put(batch, durable=False)
            batch = []
        if counter and counter % 200000 == 0:
            jobstore.checkpoint()
            print("  ... %d jobs in %.0f s" % (counter, time.perf_counter() - started),
                  flush=True)
    jobstore.put(batch, durable=False)
    jobstore.close()
    marker = {"format": MARKER_FORMAT, "size": size, "seed": seed, "generated_at": now,
              "seconds": round(time.perf_counter() - started, 1), "names": names,
              "users": users}
    with open(os.path.join(state, MARKER), "w", encoding="utf-8") as handle:
        json.dump(marker, handle)
    return marker


def ensure(size, fresh):
    state = state_folder(size)
    try:
        if not fresh:
            with open(os.path.join(state, MARKER), encoding="utf-8") as handle:
                marker = json.load(handle)
            if marker.get("format") == MARKER_FORMAT and marker.get("size") == size and \
                    time.time() - marker["generated_at"] < P.MAX_AGE_DAYS * P.DAY:
                return state, marker
    except (OSError, ValueError, KeyError):
        pass
    if os.path.exists(state):
        P.remove_state(state)
    print("filling %s with %d jobs ..." % (state, size), flush=True)
    return state, generate(state, size)


class Server:
    """The appliance on a state folder, started and timed to its first answer."""

    def __init__(self, state, users):
        self.state = state
        self.users = users
        self.proc = None

    def start(self):
        started = time.perf_counter()
        self.stderr = open(os.path.join(self.state, "bench-scale.stderr"), "w")
        self.proc = subprocess.Popen(
            [C.PYTHON, C.SERVE_ENTRY, "serve", "--state", self.state, "--port", "0"],
            cwd=C.REPO, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            raise C.BenchError("the appliance did not start: %r" % line)
        url = urllib.parse.urlsplit(line.split("serving", 1)[1].strip())
        self.port = url.port
        self.client = self.connect("heavy")
        status, _text, _ms = self.get("/cgi-bin/jobstatus.py?output_format=txt&job_id=none")
        if status != 200:
            raise C.BenchError("first request failed: HTTP %d" % status)
        return time.perf_counter() - started

    def connect(self, user):
        import http.client
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.state, "ca", "ca.crt"))
        ctx.load_cert_chain(self.users[user]["cert"], self.users[user]["key"])
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=120)

    def request(self, method, path, body=None):
        headers = {"User-Agent": C.USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        self.client.request(method, path, body=body, headers=headers)
        reply = self.client.getresponse()
        text = reply.read().decode("utf-8", "replace")
        wall = (time.perf_counter() - started) * 1000
        timing = re.search(r"dur=([0-9.]+)", reply.getheader("Server-Timing") or "")
        return reply.status, text, float(timing.group(1)) if timing else wall

    def get(self, path):
        return self.request("GET", path)

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as handle:
            text = handle.read()
        found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M))
        return int(found["VmRSS"]) / 1024, int(found["VmHWM"]) / 1024

    def stop(self):
        C.stop_pid(self.proc)
        self.proc.stdout.close()
        self.stderr.close()


def timed(server, path, repeat=5):
    times = []
    for _ in range(repeat):
        status, text, ms = server.get(path)
        if status != 200 or not text.startswith("Exit code: 0"):
            raise C.BenchError("%s: HTTP %d %s" % (path, status, text[:200]))
        times.append(ms)
    return statistics.median(times)


def submit_rate(server, count=SUBMITS):
    body = "output_format=txt&mrsltextarea_0=" + urllib.parse.quote(MRSL)
    started = time.perf_counter()
    for _ in range(count):
        status, text, _ms = server.request("POST", "/cgi-bin/textarea.py", body)
        if status != 200 or not text.startswith("Exit code: 0"):
            raise C.BenchError("submit failed: %s" % text[:300])
    return count / (time.perf_counter() - started)


def mixed(server, names, rng, count=MIXED_REQUESTS):
    """An hour's worth of requests of a busy grid, one after another."""
    since = time.time() - 60
    for n in range(count):
        roll = rng.random()
        if roll < 0.4:
            _s, text, _ms = server.get("/cgi-bin/jobchanges.py?output_format=txt&since=%.6f"
                                       % since)
            found = re.search(r"^now: ([0-9.]+)", text, re.M)
            since = float(found.group(1)) if found else since
        elif roll < 0.6:
            server.get("/cgi-bin/dashboard.py?output_format=txt")
        elif roll < 0.8:
            server.get("/cgi-bin/jobman.py?output_format=txt&page=%d" % rng.randrange(1, 200))
        elif roll < 0.9:
            server.get("/cgi-bin/jobman.py?output_format=txt&name=%s"
                       % urllib.parse.quote(rng.choice(names or ["blast"])))
        elif roll < 0.95:
            server.get("/cgi-bin/jobstatus.py?output_format=txt&job_id=%d_*" % n)
        else:
            server.request("POST", "/cgi-bin/textarea.py", "output_format=txt&mrsltextarea_0="
                           + urllib.parse.quote(MRSL))


def submit_rates(sizes, rounds=9, count=SUBMITS // 2):
    """Submissions per second into each store, median of rounds taken in turn
    (all servers up at once), so that the machine's changing load falls on
    every size alike."""
    servers = []
    try:
        for size in sizes:
            state, marker = ensure(size, False)
            server = Server(state, marker["users"])
            server.start()
            servers.append(server)
        rates = [[] for _ in servers]
        for _ in range(rounds):
            for server, found in zip(servers, rates):
                found.append(submit_rate(server, count))
        return [statistics.median(found) for found in rates]
    finally:
        for server in servers:
            server.stop()


def drop_caches():
    if os.geteuid() != 0:
        return False
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as handle:
        handle.write("3\n")
    return True


def measure(size, fresh):
    state, marker = ensure(size, fresh)
    names = marker.get("names") or []
    figures = {"size": size}
    server = Server(state, marker["users"])
    figures["start_warm"] = server.start()
    server.stop()
    cold = drop_caches()
    server = Server(state, marker["users"])
    try:
        started = server.start()
        figures["start_cold"] = started if cold else None
        figures["rss_start"], _hwm = server.rss()
        figures["counts_ms"] = timed(server, "/cgi-bin/dashboard.py?output_format=txt")
        figures["page_ms"] = timed(server, "/cgi-bin/jobman.py?output_format=txt")
        figures["deep_page_ms"] = timed(server, "/cgi-bin/jobman.py?output_format=txt&page=5000")
        figures["search_ms"] = timed(server, "/cgi-bin/jobman.py?output_format=txt&name=%s"
                                     % urllib.parse.quote(names[0] if names else "blast-0"))
        figures["changes_ms"] = timed(server, "/cgi-bin/jobchanges.py?output_format=txt"
                                      "&since=%.6f" % (time.time() - 30))
        mixed(server, names, random.Random(SEED))
        figures["rss_after"], figures["hwm"] = server.rss()
    finally:
        server.stop()
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,100000,1000000")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    C.exit_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = [measure(size, args.fresh) for size in sizes]
    for result, rate in zip(results, submit_rates(sizes)):
        result["submit_rate"] = rate
    base = results[0]
    print("\n%-10s %8s %8s %8s %8s %8s %8s %8s %8s %8s %9s %7s" % (
        "jobs", "warm s", "cold s", "RSS MB", "after MB", "counts", "page", "deep pg",
        "search", "changes", "submit/s", "ratio"))
    for r in results:
        print("%-10d %8.2f %8s %8.0f %8.0f %8.1f %8.1f %8.1f %8.1f %8.1f %9.0f %7.2f" % (
            r["size"], r["start_warm"],
            "%.2f" % r["start_cold"] if r["start_cold"] is not None else "n/a",
            r["rss_start"], r["rss_after"], r["counts_ms"], r["page_ms"], r["deep_page_ms"],
            r["search_ms"], r["changes_ms"], r["submit_rate"],
            r["submit_rate"] / base["submit_rate"]))
    top = results[-1]
    verdicts = {
        "start_warm": top["start_warm"] < GOALS["start_warm"],
        "start_cold": top["start_cold"] is None or top["start_cold"] < GOALS["start_cold"],
        "rss": max(top["rss_start"], top["rss_after"]) < GOALS["rss_mb"],
        "counts": top["counts_ms"] < GOALS["counts_ms"],
        "page": top["page_ms"] < GOALS["page_ms"],
        "submit": top["submit_rate"] / base["submit_rate"] >= GOALS["submit_ratio"],
    }
    print("\nat %d jobs: %s" % (top["size"], ", ".join(
        "%s %s" % (k, "PASS" if v else "FAIL") for k, v in verdicts.items())))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"results": results, "verdicts": verdicts}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
