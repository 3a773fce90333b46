"""MiG's txt reply format, which its user scripts parse.

``Exit code: N Description X (done in T)``, ``Title: ...``, then each
object: headers as ``___HEADER___`` between blank lines, errors as
``** text **``, tables padded column by column, job lists as
``Job Id: ...`` blocks.
"""

import stat
import time


def _cell(cell):
    if isinstance(cell, dict):
        return str(cell.get("text", cell.get("value", "")))
    return "1" if cell is True else "0" if cell is False else str(cell)


def _table(obj):
    rows = [[_cell(c) for c in r] for r in obj["rows"]]
    cells = [list(obj["columns"])] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(obj["columns"]))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"


def _long_entry(entry):
    mode = stat.filemode(entry["mode"])
    when = time.asctime(time.gmtime(entry["mtime"]))
    return "%s %d %s  %s" % (mode, entry["size"], when, entry["name"])


_JOB_TIMES = (("received_timestamp", "Received"), ("queued_timestamp", "Queued"),
              ("executing_timestamp", "Executing"), ("finished_timestamp", "Finished"),
              ("failed_timestamp", "Failed"), ("canceled_timestamp", "Canceled"),
              ("expired_timestamp", "Expired"), ("frozen_timestamp", "Frozen"),
              ("retry_timestamp", "Retry"))


def _job(job):
    lines = ["Job Id: %s" % job["job_id"], "Status: %s" % job["status"]]
    lines += ["%s: %s" % (label, job[key]) for key, label in _JOB_TIMES if job.get(key)]
    if job.get("name"):
        lines.append("Name: %s" % job["name"])
    if job.get("resource"):
        lines.append("Resource: %s" % job["resource"])
    for number, (command, code) in enumerate(job.get("exit_codes", []), 1):
        lines.append("Exit status %d: %s (command: %s)" % (number, code, command))
    if job.get("verified"):
        lines.append("Verified: %s" % job["verified"])
    if job.get("message"):
        lines.append("Reason: %s" % job["message"])
    for line in job.get("waiting", []):
        lines.append("Waiting: %s" % line)
    if job.get("execute"):
        lines.append("Execute: %s" % job["execute"])
    return "\n".join(lines) + "\n\n"


def render_object(obj):
    kind = obj["object_type"]
    if kind == "header":
        return "\n___%s___\n\n" % obj["text"].upper()
    if kind == "error_text":
        return "** %s **\n" % obj["text"]
    if kind == "warning":
        return "! %s !\n" % obj["text"]
    if kind == "markup":
        return obj["text"] + ("\n" if obj["text"] and not obj["text"].endswith("\n") else "")
    if kind in ("text", "verbatim", "success"):
        return obj["text"] + "\n"
    if kind == "file_not_found":
        return "%s: No such file or directory\n" % obj["name"]
    if kind == "table":
        return _table(obj)
    if kind == "file_output":
        return obj["text"]
    if kind == "dir_listing":
        render = _long_entry if obj["long"] else (lambda e: e["name"])
        return "".join(render(e) + "\n" for e in obj["entries"])
    if kind == "job_list":
        return "".join(_job(j) for j in obj["jobs"])
    return ""  # links and page-only objects have no txt form


def render(objects, exit_code, description, title, seconds):
    out = ["Exit code: %s Description %s (done in %.3fs)\n" % (exit_code, description, seconds),
           "Title: %s\n" % title]
    if not any(o["object_type"] == "header" for o in objects):
        out.append("\n___%s___\n\n" % title.upper())
    out.extend(render_object(o) for o in objects)
    return "".join(out)
