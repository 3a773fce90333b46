#!/usr/bin/env python3
"""Trivial jobs per second through the local resource, against xargs -P.

N jobs ``::EXECUTE::\\necho hello`` (``::RETRIES::\\n0``) are submitted over one
keep-alive HTTPS connection, BATCH per request (MiG's numbered textareas
mrsltextarea_0..N; the jobs stay separate jobs); then the benchmark
polls ``jobchanges`` (what changed since the previous poll) until every job
is final.  Time: first submit to the poll that saw the last one.  The final
states are then read once more with ``jobstatus`` (outside the timing) and
must all be FINISHED.
Baseline, same run and same command list: ``xargs -P <cores>`` running
``bash -c 'echo hello'`` N times (stdout to /dev/null).

The two are measured in turns, ROUNDS times each (xargs right after each
appliance round), and the median of the rounds' ratios is the result: on a
shared machine the speed of both drifts from second to second.

    python3 bench/bench_local_throughput.py [-n 1000] [--rounds 5]
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

GOAL = 0.5  # fraction of the xargs rate
COMMAND = "echo hello"
POLL_PAUSE = 0.05  # between status polls, so polling does not steal the cores
TIMEOUT = 90.0  # for all jobs to finish once submitted


def xargs_seconds(count, cores, runs=3):
    """Median wall time of xargs -P cores running `bash -c COMMAND` count times."""
    with tempfile.NamedTemporaryFile("w", suffix=".cmds", delete=False) as handle:
        handle.write((COMMAND + "\n") * count)
        listing = handle.name
    try:
        times = []
        for _ in range(runs):
            with open(listing, "rb") as stdin, C.Stopwatch() as watch:
                subprocess.run(["xargs", "-d", "\n", "-P", str(cores), "-n", "1",
                                "bash", "-c"], stdin=stdin, stdout=subprocess.DEVNULL,
                               check=True)
            times.append(watch.seconds)
        return statistics.median(times)
    finally:
        os.unlink(listing)


def run_appliance(client, count, batch=1):
    """(total seconds, submit seconds, {job_id: final state})."""
    mrsl = C.trivial_job(COMMAND)
    feed = C.ChangeFeed(client)
    feed.poll()  # from now on only this round's changes come back
    start = time.perf_counter()
    ids = []
    while len(ids) < count:
        ids += C.submit_many(client, mrsl, min(batch, count - len(ids)))
    submitted = time.perf_counter()
    pending = set(ids)
    deadline = submitted + TIMEOUT
    while True:
        feed.poll()
        now = time.perf_counter()
        pending = {j for j in pending if feed.states.get(j) not in C.FINAL}
        if not pending:
            break
        if now > deadline:
            raise C.BenchError("%d of %d jobs not final after %d s"
                               % (len(pending), count, TIMEOUT))
        time.sleep(POLL_PAUSE)
    # Outside the timing: every job's state once more, from jobstatus itself.
    return now - start, submitted - start, client_states(client, ids)


def client_states(client, ids, chunk=500):
    states = {}
    for i in range(0, len(ids), chunk):
        states.update(C.job_states(client, ids[i:i + chunk]))
    return states


def main(argv=None):
    parser = C.parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="jobs per round (default 1000)")
    parser.add_argument("--batch", type=int, default=50,
                        help="jobs per submit request (default 50; MiG's numbered textareas)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="appliance and xargs measurements, in turns (default 5)")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    rounds = []  # (appliance seconds, submit seconds, xargs seconds)
    outcomes = []
    with C.Appliance() as app:
        client = app.connect()
        try:
            # warm-up: one job end to end (imports, first fork, job folders)
            run_appliance(client, 1)
            for _round in range(max(1, args.rounds)):
                # Each round starts with nothing left to write back from the
                # one before (or from an earlier benchmark), which would slow
                # the appliance's disk work and not xargs.
                os.sync()
                total_s, submit_s, final = run_appliance(client, args.n, args.batch)
                outcomes.append(final)
                rounds.append((total_s, submit_s, xargs_seconds(args.n, cores, runs=1)))
            single_s, _single_submit_s, single_final = run_appliance(client, args.n, 1)
            outcomes.append(single_final)
        finally:
            client.close()
    for outcome in outcomes:
        not_finished = {j: s for j, s in outcome.items() if s != "FINISHED"}
        if not_finished:
            raise C.BenchError("%d jobs did not finish: %s"
                               % (len(not_finished), sorted(set(not_finished.values()))))
    ratios = [xargs_s / total_s for total_s, _submit_s, xargs_s in rounds]
    ratio = statistics.median_low(ratios)
    total_s, submit_s, xargs_s = rounds[ratios.index(ratio)]  # the median round
    rate, base = args.n / total_s, args.n / xargs_s
    result = {
        "name": "local_throughput", "n": args.n, "cores": cores,
        "title": "bench_local_throughput: trivial jobs/s via the local resource vs xargs -P",
        "jobs_per_s": rate, "xargs_per_s": base, "ratio": ratio, "seconds": total_s,
        "submit_seconds": submit_s, "drain_seconds": total_s - submit_s,
        "xargs_seconds": xargs_s, "round_ratios": ratios, "goal": ">= %d%% of xargs -P %d" % (GOAL * 100, cores),
        "pass": ratio >= GOAL, "machine": C.machine(),
    }
    result["single_request_jobs_per_s"] = args.n / single_s
    result["rows"] = [
        ("jobs", "%d x '%s', submitted %d per request" % (args.n, COMMAND, args.batch)),
        ("appliance jobs/s", "%.1f (%.2f s)" % (rate, total_s)),
        ("  of which submitting", "%.2f s (%.1f submits/s)" % (submit_s, args.n / submit_s)),
        ("  last submit -> last FINISHED", "%.2f s" % (total_s - submit_s)),
        ("xargs -P %d jobs/s (baseline)" % cores, "%.1f (%.2f s, same round)" % (base, xargs_s)),
        ("ratio appliance / xargs", "%.3f (median of %d rounds: %s)"
         % (ratio, len(ratios), ", ".join("%.3f" % r for r in ratios))),
        ("rounds: appliance s / xargs s", ", ".join("%.2f/%.2f" % (total, xargs)
                                                    for total, _submit, xargs in rounds)),
        ("one job per request: jobs/s", "%.1f (ratio %.3f; not the goal's measure)"
         % (args.n / single_s, args.n / single_s / base)),
        ("machine", result["machine"]),
    ]
    return C.finish(result, args)


if __name__ == "__main__":
    sys.exit(main())
