#!/usr/bin/env python3
"""Submissions per second over ONE keep-alive HTTPS connection.

Each submission is ``POST /cgi-bin/textarea.py`` with a job no resource can
run (ARCHITECTURE SPARC), so the jobs stay QUEUED and the local executor
does not compete for the CPU.  Baseline, same server and connection: a
no-op request of exactly the same size -- ``POST /cgi-bin/jobstatus.py``
for a job id that does not exist, padded with MiG's always-allowed ``_``
field.  It pays for TLS, HTTP parsing, certificate authentication, form
parsing, validation and txt rendering but touches no disk, so the ratio is
the cost of the submit path itself (mRSL parse, durable write, indexing,
scheduler wake-up).  Each phase stops after N requests or --budget
seconds, whichever comes first, so a slow server still ends in time; the
rates are over what was done.  No-ops are measured before the submissions
(empty queue) and again after them (full queue), to show background load.

    python3 bench/bench_submit.py [-n 2000] [--budget 35]
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

GOAL = 500.0  # submissions per second
MRSL = "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n"
NOOP_ERROR = "You do not have any matching job IDs"


def noop_body(size):
    """jobstatus for a job that does not exist, padded to exactly size bytes."""
    body = C.urlencode([("output_format", "txt"), ("job_id", "nonexistent"), ("_", "")])
    if len(body) > size:
        raise C.BenchError("the submit body is smaller than the no-op body")
    return body + "x" * (size - len(body))


def run_noops(client, body, count, budget):
    """(requests done, seconds): count no-ops, or fewer if budget seconds run out."""
    done = 0
    with C.Stopwatch() as watch:
        deadline = watch.start + budget
        while done < count:
            status, text = client.post_body("/cgi-bin/jobstatus.py", body)
            if status != 200 or NOOP_ERROR not in text:
                raise C.BenchError("unexpected no-op reply (HTTP %d): %s" % (status, text[:300]))
            done += 1
            if time.perf_counter() > deadline:
                break
    return done, watch.seconds


def run_submits(client, body, count, budget, slices=4):
    """(submissions done, seconds, [rate over each quarter of the submissions])."""
    done, marks = 0, []
    with C.Stopwatch() as watch:
        deadline = watch.start + budget
        while done < count:
            C.check_txt_ok(*client.post_body("/cgi-bin/textarea.py", body))
            done += 1
            marks.append(time.perf_counter())
            if marks[-1] > deadline:
                break
    rates = []
    slices = min(slices, done)
    per = max(1, done // slices)
    last = watch.start
    for i in range(per - 1, per * slices, per):
        rates.append(per / (marks[i] - last))
        last = marks[i]
    return done, watch.seconds, rates


def main(argv=None):
    parser = C.parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="submissions (default 2000)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--budget", type=float, default=35.0,
                        help="at most this many seconds per phase (default 35)")
    args = parser.parse_args(argv)
    body = C.submit_body(MRSL)
    nbody = noop_body(len(body))
    with C.Appliance() as app:
        client = app.connect()
        try:
            run_noops(client, nbody, args.warmup, args.budget)
            noop_n, noop_s = run_noops(client, nbody, args.n, args.budget)
            # Each submission waits for its fdatasync: not for the write-back
            # of whatever earlier work (another benchmark) left behind.
            os.sync()
            submit_n, submit_s, slices = run_submits(client, body, args.n, args.budget)
            after_n, after_s = run_noops(client, nbody, max(1, args.n // 4), args.budget / 4)
            # every submission must be there and still QUEUED
            states = C.job_states(client, ["*"])
        finally:
            client.close()
    queued = sum(1 for s in states.values() if s == "QUEUED")
    if queued != submit_n:
        raise C.BenchError("expected %d QUEUED jobs, found %d" % (submit_n, queued))
    submits, noops = submit_n / submit_s, noop_n / noop_s
    result = {
        "name": "submit", "title": "bench_submit: submissions/s, one keep-alive HTTPS connection",
        "n": submit_n, "noop_n": noop_n, "n_asked": args.n, "budget_s": args.budget,
        "body_bytes": len(body), "submits_per_s": submits, "noops_per_s": noops,
        "noops_after_per_s": after_n / after_s, "ratio": submits / noops,
        "slices_per_s": slices, "goal": ">= %d submissions/s" % GOAL, "pass": submits >= GOAL,
        "machine": C.machine(),
    }
    result["rows"] = [
        ("submissions", "%d of %d in %.1f s (body %d bytes)"
         % (submit_n, args.n, submit_s, len(body))),
        ("submissions/s", "%.0f" % submits),
        ("no-op requests/s (baseline)", "%.0f (%d in %.1f s)" % (noops, noop_n, noop_s)),
        ("ratio submit / no-op", "%.2f" % result["ratio"]),
        ("submissions/s, 1st..4th quarter", " ".join("%.0f" % s for s in slices)),
        ("no-op/s after the submissions", "%.0f" % result["noops_after_per_s"]),
        ("machine", result["machine"]),
    ]
    return C.finish(result, args)


if __name__ == "__main__":
    sys.exit(main())
