#!/usr/bin/env python3
"""Run every benchmark (each in its own process, with its own appliance) and
print a summary: figure, baseline, ratio, goal, PASS/FAIL.

    python3 bench/run_all.py        (or: make bench)
"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common as C  # noqa: E402

BENCHES = ("bench_submit.py", "bench_local_throughput.py", "bench_latency.py")
TIMEOUT = 240  # per benchmark; each aims at well under 2 minutes


def headline(result):
    name = result["name"]
    if name == "submit":
        return ("%.0f submissions/s" % result["submits_per_s"],
                "%.0f no-op/s" % result["noops_per_s"], "%.2f" % result["ratio"])
    if name == "local_throughput":
        return ("%.1f jobs/s" % result["jobs_per_s"],
                "%.1f jobs/s xargs -P %d" % (result["xargs_per_s"], result["cores"]),
                "%.3f" % result["ratio"])
    if name == "latency":
        return ("p50 %.1f / p90 %.1f / max %.1f ms" % (result["p50_ms"], result["p90_ms"],
                                                     result["max_ms"]),
                "%.2f ms jobstatus" % result["jobstatus_rtt_ms"],
                "%.1f" % result["ratio_p50_rtt"])
    return ("?", "?", "?")


def run_one(script, out):
    """Run one benchmark; stream its output; return (result or None, seconds)."""
    cmd = [sys.executable, os.path.join(HERE, script), "--json", out]
    print("\n$ %s" % " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    try:
        proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        print("%s: still running after %d s; stopping it" % (script, TIMEOUT), flush=True)
    finally:
        C.stop_pid(proc)  # SIGTERM, then SIGKILL; its finally blocks stop its server
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not os.path.exists(out):
        print("%s failed (exit %s)" % (script, proc.returncode), flush=True)
        return None, seconds
    with open(out, encoding="utf-8") as handle:
        return json.load(handle), seconds


def main():
    print("MiG appliance benchmarks -- %s" % C.machine())
    print(time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    rows, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="mig-bench-results-") as tmp:
        for script in BENCHES:
            result, seconds = run_one(script, os.path.join(tmp, script + ".json"))
            if result is None:
                failed += 1
                rows.append((script, "ERROR", "", "", "", "ERROR", seconds))
                continue
            figure, base, ratio = headline(result)
            rows.append((script, figure, base, ratio, result["goal"],
                         C.verdict(result["pass"]), seconds))
    print("\n== summary ==")
    header = ("benchmark", "figure", "baseline (same run)", "ratio", "goal", "result", "time")
    table = [header] + [r[:6] + ("%.0f s" % r[6],) for r in rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
