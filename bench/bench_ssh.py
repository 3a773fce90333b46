#!/usr/bin/env python3
"""Jobs through one ssh resource: sustained jobs/s and the per-job overhead.

Starts a private sshd on 127.0.0.1 (as the tests do: needs root), registers
it as the only resource, and measures (1) N trivial jobs submitted 50 per
request, first submit to last FINISHED (goal: >= 25 jobs/s), and (2) one
job at a time, submit to FINISHED, against the baseline of a raw
``ssh true`` over the same kind of ControlMaster connection (goal: the
difference under 40 ms).

    sudo python3 bench/bench_ssh.py [-n 200]
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import common as C  # noqa: E402
from test_ssh_resources import Sshd, only_remote_resources, sshd_resource_conf  # noqa: E402

GOAL_RATE, GOAL_OVERHEAD_MS = 25.0, 40.0
JOB = "::EXECUTE::\necho hello\n\n::RETRIES::\n0\n"


def raw_ssh_true(sshd, key, runs=30):
    control = tempfile.mktemp(prefix="cm-", dir="/tmp")
    known = tempfile.mktemp(prefix="kh-", dir="/tmp")
    with open(known, "w") as handle:
        handle.write("[%s]:%d %s\n" % (sshd.address, sshd.port, sshd.public_host_key()))
    base = ["ssh", "-p", str(sshd.port), "-i", key, "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=%s" % known, "-o", "StrictHostKeyChecking=yes",
            "-o", "ControlMaster=auto", "-o", "ControlPath=%s" % control,
            "-o", "ControlPersist=30", "-o", "KexAlgorithms=curve25519-sha256",
            "%s@%s" % (sshd.user, sshd.address)]
    try:
        subprocess.run(base + ["true"], check=True, capture_output=True)
        times = []
        for _ in range(runs):
            with C.Stopwatch() as watch:
                subprocess.run(base + ["true"], check=True, capture_output=True)
            times.append(watch.seconds)
        return statistics.median(times)
    finally:
        subprocess.run(["ssh", "-o", "ControlPath=%s" % control, "-O", "exit", "x"],
                       capture_output=True)
        os.unlink(known)


def wait_all(client, ids, timeout=300):
    deadline = time.time() + timeout
    pending = set(ids)
    while pending and time.time() < deadline:
        states = C.job_states(client, sorted(pending))
        pending -= {j for j, s in states.items() if s in C.FINAL}
        if pending:
            time.sleep(0.002)  # tight: the poll must not be what is measured
    if pending:
        raise C.BenchError("%d jobs not final" % len(pending))


def main(argv=None):
    parser = C.parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="jobs for the rate (default 200)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates a user and starts sshd")
    sshd = Sshd()
    added = {}

    def prepare(state):
        """Only the ssh resource runs jobs; register it and authorize the grid's key."""
        only_remote_resources(state)
        conf = os.path.join(os.path.dirname(state), "res.conf")
        with open(conf, "w") as handle:
            handle.write(sshd_resource_conf(sshd, sshd.public_host_key()))
        added.update(json.loads(subprocess.run(
            [sys.executable, C.ENTRY, "resource", "add", "--conf", conf, "--owner", "bench",
             "--json", "--state", state], check=True, capture_output=True, text=True).stdout))
        sshd.authorize(added["grid_public_key"])
        sshd.start()

    try:
        with C.Appliance(prepare=prepare) as app:
            client = app.connect()
            baseline = raw_ssh_true(sshd, added["grid_public_key"][:-4])
            singles = []
            for _ in range(20):
                with C.Stopwatch() as watch:
                    wait_all(client, [C.submit(client, JOB)])
                singles.append(watch.seconds)
            with C.Stopwatch() as burst:
                ids = []
                while len(ids) < args.n:
                    ids += C.submit_many(client, JOB, min(50, args.n - len(ids)))
                wait_all(client, ids)
            client.close()
    finally:
        sshd.stop()
    single = statistics.median(singles)
    rate = args.n / burst.seconds
    overhead_ms = (single - baseline) * 1000
    result = {"name": "ssh", "title": "bench_ssh: jobs through one ssh resource",
              "jobs_per_s": rate, "single_s": single, "ssh_true_s": baseline,
              "overhead_ms": overhead_ms, "goal": ">= %d jobs/s; overhead < %d ms"
              % (GOAL_RATE, GOAL_OVERHEAD_MS),
              "pass": rate >= GOAL_RATE and overhead_ms < GOAL_OVERHEAD_MS,
              "machine": C.machine()}
    result["rows"] = [
        ("jobs/s (%d jobs, 50 per submit)" % args.n, "%.1f" % rate),
        ("one job, submit to FINISHED (median)", "%.1f ms" % (single * 1000)),
        ("raw ssh true over a master (baseline)", "%.1f ms" % (baseline * 1000)),
        ("per-job overhead beyond ssh true", "%.1f ms" % overhead_ms),
        ("machine", result["machine"]),
    ]
    return C.finish(result, args)


if __name__ == "__main__":
    sys.exit(main())
