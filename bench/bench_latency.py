#!/usr/bin/env python3
"""Submit -> FINISHED latency of a trivial job, one job at a time.

For each of N jobs (``echo hello``, no retries): submit it, then poll
``jobstatus`` for that job id in a tight loop on the same keep-alive HTTPS
connection until it is FINISHED.  Latency: from sending the submit to the
reply that says FINISHED.  Baseline, same run and connection: the round
trip of one ``jobstatus`` request for one (finished) job, so the ratio
says how many request-times a job takes.  Slurm is not running here, so an
``sbatch`` on the machine is only noted, never measured.

    python3 bench/bench_latency.py [-n 100]
"""

import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

GOAL_MS = 100.0  # p50
JOB_TIMEOUT = 30.0


def one_job(client, mrsl):
    """(latency seconds, polls) of one job from submit to FINISHED."""
    start = time.perf_counter()
    job_id = C.submit(client, mrsl)
    polls = 0
    while True:
        polls += 1
        state = C.job_states(client, [job_id]).get(job_id)
        if state == "FINISHED":
            return time.perf_counter() - start, polls, job_id
        if state in C.FINAL:
            raise C.BenchError("job %s ended %s" % (job_id, state))
        if time.perf_counter() - start > JOB_TIMEOUT:
            raise C.BenchError("job %s not FINISHED after %d s" % (job_id, JOB_TIMEOUT))


def round_trips(client, job_id, count):
    times = []
    for _ in range(count):
        with C.Stopwatch() as watch:
            C.job_states(client, [job_id])
        times.append(watch.seconds)
    return times


def main(argv=None):
    parser = C.parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="jobs (default 100)")
    args = parser.parse_args(argv)
    mrsl = C.trivial_job("echo hello")
    with C.Appliance() as app:
        client = app.connect()
        try:
            _lat, _polls, warm_id = one_job(client, mrsl)  # warm-up
            round_trips(client, warm_id, 10)
            latencies, polls = [], []
            for _ in range(args.n):
                latency, count, last_id = one_job(client, mrsl)
                latencies.append(latency)
                polls.append(count)
            rtts = round_trips(client, last_id, args.n)
        finally:
            client.close()
    ms = [x * 1000 for x in latencies]
    rtt = statistics.median(rtts) * 1000
    p50, p90, worst = C.percentile(ms, 0.5), C.percentile(ms, 0.9), max(ms)
    sbatch = shutil.which("sbatch")
    slurm = ("sbatch found at %s: not measured (Slurm is not running here)" % sbatch
             if sbatch else "sbatch not installed: not measured")
    result = {
        "name": "latency", "n": args.n,
        "title": "bench_latency: submit -> FINISHED latency of a trivial job, sequential",
        "p50_ms": p50, "p90_ms": p90, "max_ms": worst, "min_ms": min(ms),
        "jobstatus_rtt_ms": rtt, "ratio_p50_rtt": p50 / rtt,
        "polls_median": statistics.median(polls), "slurm": slurm,
        "goal": "p50 < %d ms" % GOAL_MS, "pass": p50 < GOAL_MS, "machine": C.machine(),
    }
    result["rows"] = [
        ("jobs", "%d x 'echo hello', one at a time" % args.n),
        ("latency p50 / p90 / max", "%.1f / %.1f / %.1f ms" % (p50, p90, worst)),
        ("jobstatus round trip (baseline)", "%.2f ms (median of %d)" % (rtt, len(rtts))),
        ("ratio p50 / round trip", "%.1f" % (p50 / rtt)),
        ("status polls per job (median)", "%g" % statistics.median(polls)),
        ("Slurm", slurm),
        ("machine", result["machine"]),
    ]
    return C.finish(result, args)


if __name__ == "__main__":
    sys.exit(main())
