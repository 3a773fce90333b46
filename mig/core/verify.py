"""Result verification (VERIFYFILES): the job's outputs against regex templates.

Each template is a file in the owner's home ending in .status, .stdout or
.stderr; its lines are regular expressions matched, line by line, against
the same output of the job.  An empty template matches a missing output.
"""

import os
import re
import time

from mig.core.jobspec import split_file_line

SUFFIXES = ("status", "stdout", "stderr")
MAX_LINES = 10000
BUDGET_SECONDS = 3.0


def _lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.strip() for line in handle.read().splitlines()[:MAX_LINES + 1]]
    except FileNotFoundError:
        return None


def _check(template_lines, output_lines, deadline):
    if output_lines is None:
        return None if not template_lines else "the output is missing"
    if len(template_lines) != len(output_lines):
        return "%d lines expected, %d found" % (len(template_lines), len(output_lines))
    for number, (pattern, line) in enumerate(zip(template_lines, output_lines), 1):
        if time.monotonic() > deadline:
            return "verification took too long"
        try:
            if not re.match(pattern, line):
                return "line %d does not match %r" % (number, pattern)
        except re.error as exc:
            return "line %d of the template is not a valid expression: %s" % (number, exc)
    return None


def verify_results(home, job_id, spec):
    """MiG's VERIFIED text: NO, 'SUCCESS - ...' or 'FAILURE - ...'."""
    entries = spec.get("VERIFYFILES") or []
    if not entries:
        return "NO"
    deadline = time.monotonic() + BUDGET_SECONDS
    verdicts, failed = [], False
    out_dir = home.job_output_dir(job_id)
    for entry in entries:
        template = split_file_line(entry)[0]
        suffix = template.rsplit(".", 1)[-1]
        if suffix not in SUFFIXES:
            verdicts.append("%s: not a .status, .stdout or .stderr template" % template)
            failed = True
            continue
        try:
            template_lines = _lines(home.resolve(template))
        except Exception as exc:  # a refused path is a failed verification, not a crash
            template_lines, problem = None, str(exc)
        else:
            problem = None if template_lines is not None else "template %s is missing" % template
        if problem is None:
            output = _lines(os.path.join(out_dir, "%s.%s" % (job_id, suffix)))
            problem = _check(template_lines, output, deadline)
        if problem:
            failed = True
            verdicts.append("%s: %s" % (suffix, problem))
        else:
            verdicts.append("%s: OK" % suffix)
    return "%s - %s" % ("FAILURE" if failed else "SUCCESS", " ".join(verdicts))
