#!/usr/bin/env python3
"""A 100,000-job parameter sweep: accepted in one request, run to FINISHED.

One ``POST /cgi-bin/sweep.py`` with ``n=0:N`` makes N jobs
(``echo +n+``); the benchmark times the request (goal: under a second),
then follows ``sweepstatus`` until every job is FINISHED and reports the
jobs/s.  Baseline, same run and connection: the round trip of submitting
ONE job, so the ratio says how many single submissions the whole sweep
costs to accept.

    python3 bench/bench_sweep.py [-n 100000]
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

GOAL_SECONDS = 1.0
POLL = 1.0


def sweep_counts(client, sweep_id):
    status, text = client.post("/cgi-bin/sweepstatus.py",
                               {"output_format": "txt", "sweep_id": sweep_id})
    C.check_txt_ok(status, text)
    lines = text.splitlines()
    header = [line.split() for line in lines if line.startswith("Sweep ID")][0][5:]
    row = [line.split() for line in lines if line.startswith(sweep_id)][0][3:]
    return {name: int(value) for name, value in zip(header, row)}


def main(argv=None):
    parser = C.parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100000, help="jobs in the sweep (default 100000)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for all")
    args = parser.parse_args(argv)
    with C.Appliance() as app:
        client = app.connect()
        try:
            with C.Stopwatch() as one:
                C.submit(client, C.trivial_job("echo baseline"))
            with C.Stopwatch() as accept:
                status, text = client.post("/cgi-bin/sweep.py", {
                    "output_format": "txt", "params": "n=0:%d" % args.n,
                    "mrsltextarea_0": "::EXECUTE::\necho +n+\n\n::RETRIES::\n0\n"})
            C.check_txt_ok(status, text)
            sweep_id = re.search(r"Sweep (sweep_\S+) accepted", text).group(1)
            start, counts = time.perf_counter(), {}
            while time.perf_counter() - start < args.timeout:
                counts = sweep_counts(client, sweep_id)
                if counts.get("FINISHED", 0) + counts.get("FAILED", 0) >= args.n:
                    break
                time.sleep(POLL)
            run_s = time.perf_counter() - start
        finally:
            client.close()
    finished = counts.get("FINISHED", 0)
    result = {
        "name": "sweep", "n": args.n,
        "title": "bench_sweep: a %d-job parameter sweep, accepted and run" % args.n,
        "accept_seconds": accept.seconds, "single_submit_seconds": one.seconds,
        "ratio": accept.seconds / one.seconds, "run_seconds": run_s,
        "jobs_per_s": finished / run_s if run_s else 0, "finished": finished,
        "goal": "accepted in < %.0f s, all FINISHED" % GOAL_SECONDS,
        "pass": accept.seconds < GOAL_SECONDS and finished == args.n, "machine": C.machine(),
    }
    result["rows"] = [
        ("sweep accepted in", "%.3f s (%d jobs)" % (accept.seconds, args.n)),
        ("one job submitted in (baseline)", "%.4f s" % one.seconds),
        ("ratio sweep / one job", "%.1f" % result["ratio"]),
        ("all jobs final after", "%.1f s (%d FINISHED, %.0f jobs/s)"
         % (run_s, finished, result["jobs_per_s"])),
        ("machine", result["machine"]),
    ]
    return C.finish(result, args)


if __name__ == "__main__":
    sys.exit(main())
