"""Result verification (VERIFYFILES): the job's outputs against regex templates.

Each template is a file in the owner's home ending in .status, .stdout or
.stderr; its lines are regular expressions matched, line by line, against
the same output of the job.  An empty template matches a missing output.
The patterns are the user's, so they run in saferegex's helpers: a runaway
one fails the verification with a reason instead of freezing the server.
"""

import os
import time

from mig.core import saferegex
from mig.core.jobspec import split_file_line
from mig.errors import MigError

SUFFIXES = ("status", "stdout", "stderr")
MAX_LINES = 10000
MAX_CHARS = saferegex.MAX_INPUT // 2  # of a template or an output: both go in one call
BUDGET_SECONDS = 3.0


class _TooLarge(Exception):
    pass


def _lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(MAX_CHARS + 1)
    except FileNotFoundError:
        return None
    if len(text) > MAX_CHARS:
        raise _TooLarge("%s is larger than the %d characters verified"
                        % (os.path.basename(path), MAX_CHARS))
    return [line.strip() for line in text.splitlines()[:MAX_LINES + 1]]


def _check(template_lines, output_lines, deadline):
    if output_lines is None:
        return None if not template_lines else "the output is missing"
    if len(template_lines) != len(output_lines):
        return "%d lines expected, %d found" % (len(template_lines), len(output_lines))
    if time.monotonic() > deadline:
        return "verification took too long"
    try:
        miss = saferegex.first_mismatch(list(zip(template_lines, output_lines)))
    except (saferegex.PatternTooSlow, saferegex.BadPattern) as exc:
        return exc.message
    except MigError as exc:  # an over-long pattern, a helper that could not start
        return "cannot verify: %s" % exc.message
    if miss is None:
        return None
    index, error = miss
    if error:
        return "line %d of the template is not a valid expression: %s" % (index + 1, error)
    return "line %d does not match %r" % (index + 1, template_lines[index])


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
            try:
                output = _lines(os.path.join(out_dir, "%s.%s" % (job_id, suffix)))
            except _TooLarge as exc:
                problem = "%s; too large to verify" % exc
            else:
                problem = _check(template_lines, output, deadline)
        if problem:
            failed = True
            verdicts.append("%s: %s" % (suffix, problem))
        else:
            verdicts.append("%s: OK" % suffix)
    return "%s - %s" % ("FAILURE" if failed else "SUCCESS", " ".join(verdicts))
