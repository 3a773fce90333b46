"""The Jobs list and one job's page: sorting, paging and per-row actions;
state, history, why it waits, exit codes, outputs inline and the files
the job kept; the live output of a running job."""

import os
import time

from mig.backends import Field, backend
from mig.backends.fileshared import download_href
from mig.backends.jobs import (INLINE_OUTPUT_BYTES, asctime, exit_badge, failed_exit, job_object,
                               live, output_tail, pending, retries_text, status_cell)
from mig.core import jobspec
from mig.core import jobs as J
from mig.core.jobindex import ORDERS, SEARCH_COUNT_LIMIT, SORT_WINDOW
from mig.core.quota import human_size
from mig.errors import ClientError, MigError
from mig.backends.portal import PER_PAGE, page_url
from mig.backends.visibility import visibility_form
from mig.render import objects as O


def _date(text, what):
    if not text:
        return 0
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d")) - time.timezone
    except ValueError:
        raise ClientError("%s: %r is not a date like 2026-11-22" % (what, text)) from None


ORDER_LABELS = {"newest": "newest first", "oldest": "oldest first", "state": "state",
                "name": "name"}


@backend("jobman", title="Jobs", header="Jobs",
         fields={"state": Field("word", help="only jobs in this state"),
                 "name": Field("text", help="part of the job name or id"),
                 "since": Field("text", help="received on or after YYYY-MM-DD"),
                 "until": Field("text", help="received on or before YYYY-MM-DD"),
                 "archived": Field("word", help="yes: search the archive of old jobs"),
                 "sort": Field("word", default=("newest",),
                               help="newest (the default), oldest, state or name"),
                 "page": Field("number", default=("1",))})
def jobman(ctx, args):
    """Your jobs, newest first or sorted, filtered and paged; act on one or many at once."""
    state = args["state"].upper()
    if state and state not in J.STATES:
        raise ClientError("unknown state %r" % args["state"])
    order = args["sort"] or "newest"
    if order not in ORDERS:
        raise ClientError("unknown sort %r: use %s" % (order, ", ".join(ORDERS)))
    page = max(1, int(args["page"] or 1))
    start = (page - 1) * PER_PAGE
    jobs = ctx.grid.jobs
    archived = args["archived"].lower() in ("yes", "1", "on", "true")
    searched = bool(args["name"] or args["since"] or args["until"] or archived)
    if searched:
        since = _date(args["since"], "since")
        until = _date(args["until"], "until") + 86400 if args["until"] else None
        matched, entries = jobs.index.search(ctx.user, args["name"], since, until,
                                             state or None, start, PER_PAGE, archived, order)
    else:  # the common case reads only the page
        matched = jobs.index.total(ctx.user, state or None)
        entries = jobs.index.page(ctx.user, state or None, start, PER_PAGE, order)
    codes = _failed_exits(jobs, entries)
    rows = []
    for entry in entries:
        rows.append([{"checkbox": "job_id", "value": entry.job_id},
                     {"text": entry.job_id, "href": page_url("jobview", job_id=entry.job_id)},
                     status_cell(entry.state, codes.get(entry.job_id)), entry.name,
                     asctime(entry.received), _row_actions(entry)])
    form = {"object_type": "form", "action": "jobman", "method": "get", "submit": "Filter",
            "fields": [
                {"name": "state", "label": "State", "type": "select", "value": state,
                 "options": [("", "any")] + [(s, s) for s in J.STATES]},
                {"name": "name", "label": "Name or id contains", "value": args["name"]},
                {"name": "since", "label": "Received since", "value": args["since"],
                 "help": "YYYY-MM-DD"},
                {"name": "until", "label": "Received until", "value": args["until"],
                 "help": "YYYY-MM-DD"},
                {"name": "archived", "label": "Where", "type": "select",
                 "value": "yes" if archived else "",
                 "options": [("", "current jobs"), ("yes", "the archive of old jobs")]},
                {"name": "sort", "label": "Sort by", "type": "select", "value": order,
                 "options": list(ORDER_LABELS.items())}]}
    capped = searched and matched > SEARCH_COUNT_LIMIT  # a search counts no further
    listed = min(matched, SEARCH_COUNT_LIMIT) if searched else matched
    windowed = order in ("state", "name") and listed > SORT_WINDOW
    if windowed:  # sorting by state or name orders the newest SORT_WINDOW jobs only
        listed = SORT_WINDOW
    pages = max(1, (listed + PER_PAGE - 1) // PER_PAGE)
    query = {k: args[k] for k in ("state", "name", "since", "until", "archived") if args[k]}
    if order != "newest":
        query["sort"] = order
    href = page_url("jobman", **query) + ("&" if query else "?") + "page={page}"
    near = sorted(set([1, pages] + list(range(max(1, page - 3), min(pages, page + 3) + 1))))
    table = O.table("jobs", ("", "Job ID", "Status", "Name", "Received (UTC)", "Actions"),
                    rows)
    table["select"] = {"backend": "jobmanaction", "name": "job_id",
                       "actions": [("cancel", "Cancel"), ("freeze", "Freeze"),
                                   ("thaw", "Thaw"), ("resubmit", "Resubmit")]}
    table["empty"] = "No jobs match."
    count = (O.text("More than %d jobs match; the newest are shown." % SEARCH_COUNT_LIMIT)
             if capped else
             O.text("%d job%s match." % (matched, "" if matched == 1 else "s")))
    objects = [live(ctx, pending(ctx.grid, ctx.user)), form,
               {"object_type": "links", "links": [(page_url("sweepstatus"),
                                                   "Parameter sweeps")]}, count]
    if windowed:
        objects.append(O.text("Sorted by %s: the newest %d of them." % (order, SORT_WINDOW)))
    return O.Result(objects + [table, {"object_type": "pager", "page": page, "pages": near,
                                       "href": href}])


def _failed_exits(jobs, entries):
    """{job_id: non-zero exit code} of the FINISHED jobs of one page (a page
    reads at most PER_PAGE records): a list must not show them as successes."""
    found = {}
    for entry in entries:
        if entry.state != J.FINISHED:
            continue
        try:
            code = failed_exit(jobs.record(entry.job_id))
        except MigError:  # purged meanwhile
            continue
        if code is not None:
            found[entry.job_id] = code
    return found


def _row_actions(entry):
    """View, Cancel (while the job can still be cancelled) and Resubmit for one row."""
    job_id = entry.job_id
    actions = [{"text": "View", "href": page_url("jobview", job_id=job_id)}]
    if entry.state in J.ACTIONS["cancel"][0]:
        actions.append({"post": "jobmanaction", "text": "Cancel", "style": "danger",
                        "fields": {"job_id": job_id, "action": "cancel"},
                        "confirm": "Cancel job %s?" % job_id})
    actions.append({"post": "jobmanaction", "text": "Resubmit",
                    "fields": {"job_id": job_id, "action": "resubmit"}})
    return {"group": actions}


@backend("jobmanaction", title="Jobs", header="Jobs", state_changing=True,
         fields={"job_id": Field("job_id", multi=True, required=True,
                                 help="the jobs to act on"),
                 "action": Field("word", required=True)})
def jobmanaction(ctx, args):
    """Cancel, freeze, thaw or resubmit the selected jobs."""
    if args["action"] == "resubmit":
        result = ctx.call("resubmit", {"job_id": args["job_id"]})
    elif args["action"] in J.ACTIONS:
        result = ctx.call("jobaction", {"job_id": args["job_id"], "action": [args["action"]]})
    else:
        raise ClientError("unknown action %r" % args["action"])
    for obj in result.objects:  # words and links instead of MiG's 1/0 and bare ids
        if obj.get("object_type") == "table":
            obj["rows"] = [_action_row(obj.get("kind"), row) for row in obj["rows"]]
    result.objects.append({"object_type": "links", "links": [(page_url("jobman"), "Back to Jobs")]})
    return result


def _action_row(kind, row):
    def job_link(job_id):
        return {"text": job_id, "href": page_url("jobview", job_id=job_id)} if job_id else ""
    if kind == "resubmitobjs":
        old, ok, new, message = row
        return (job_link(old), "resubmitted" if ok else "not resubmitted", job_link(new),
                message)
    if kind == "changedstatusjobs":
        return (job_link(row[0]),) + tuple(row[1:])
    return row


@backend("jobview", title="Job", header="Job",
         fields={"job_id": Field("job_id", required=True)})
def jobview(ctx, args):
    """One job: state, history, why it waits, results, and live output while it runs.

    Results: exit codes (non-zero ones marked), stdout and stderr inline (their
    last 64 KB) and the files OUTPUTFILES kept, linked where they are in the home."""
    grid = ctx.grid
    record = grid.jobs.get(ctx.user, args["job_id"])
    job_id, state = record["JOB_ID"], record["STATUS"]
    job = job_object(grid, record, verbose=True)
    code = failed_exit(record)
    objects = [O.header(job_id), live(ctx, state not in J.FINAL_STATES, job_id)]
    summary = [("Status", status_cell(state, code)), ("Name", job.get("name", "")),
               ("Resource", job.get("resource", "")), ("Retries used", retries_text(record))]
    started = grid.run_started(record)
    if started == 0:
        summary.append(("Started", "not yet: handed to %s, it waits there for a free slot"
                        % job.get("resource", "its resource")))
    elif started:
        left = int(record["SPEC"]["CPUTIME"]) - (time.time() - started)
        summary.append(("Started", "%s (CPUTIME left: %d s)" % (asctime(started),
                                                                max(0, left))))
    if record.get("EXIT_CODES"):
        failed = sum(1 for _command, c in record["EXIT_CODES"] if c)
        summary.append(("Commands", "all exited 0" if not failed else
                        "%d of %d exited non-zero (the last with %d)"
                        % (failed, len(record["EXIT_CODES"]), code)))
    if job.get("message"):
        summary.append(("Reason", job["message"]))
    if job.get("verified"):
        summary.append(("Verified", job["verified"]))
    objects.append(O.table("job", ("What", "Value"), summary))
    buttons = []
    for action, (allowed, _target) in J.ACTIONS.items():
        if state in allowed:
            buttons.append({"object_type": "post_button", "backend": "jobmanaction",
                            "fields": {"job_id": job_id, "action": action},
                            "text": action.title(),
                            "confirm": "Cancel this job?" if action == "cancel" else None})
    buttons.append({"object_type": "post_button", "backend": "jobmanaction",
                    "fields": {"job_id": job_id, "action": "resubmit"}, "text": "Resubmit"})
    objects += buttons
    if state in J.WAITING_STATES:
        objects.append(O.header("Why it waits"))
        objects += [O.text(line) for line in job.get("waiting", [])]
    if record.get("EXIT_CODES"):
        objects.append(O.header("Exit codes"))
        objects.append(O.table("exitcodes", ("Command", "Exit code"), [
            (command, {"text": str(c), "badge": exit_badge(c)} if c else c)
            for command, c in record["EXIT_CODES"]]))
    if state == J.EXECUTING:
        objects.append(O.header("Live output (stdout)"))
        objects.append({"object_type": "tail", "text": "",
                        "href": page_url("jobtail", job_id=job_id, output_format="json")})
    objects += _job_results(ctx, record)
    objects.append(O.header("History"))
    objects.append(O.table("history", ("State", "Time (UTC)", "Note"), job["history"]))
    objects.append(O.header("Job description"))
    objects.append(O.verbatim(record.get("MRSL") or jobspec.to_mrsl(record["SPEC"])))
    objects.append(O.header("Sharing"))
    objects += visibility_form(ctx, "job", job_id)
    return O.Result(objects)


def _job_results(ctx, record):
    """A job's stdout and stderr inline (their end, bounded), the files it
    declared in OUTPUTFILES linked where they landed in the home, and the
    files of job_output/JOBID."""
    job_id = record["JOB_ID"]
    out_dir = "job_output/%s" % job_id
    objects = []
    for stream, title in (("stdout", "Standard output"), ("stderr", "Standard error")):
        rel = "%s/%s.%s" % (out_dir, job_id, stream)
        text, size = output_tail(ctx.home, rel)
        if text is None:
            continue
        objects.append(O.header(title))
        if not size:
            objects.append(O.text("Nothing was written to %s." % stream))
            continue
        if size > INLINE_OUTPUT_BYTES:
            objects.append(O.text("The last %s of %s:" % (human_size(INLINE_OUTPUT_BYTES),
                                                          human_size(size))))
        objects.append({"object_type": "verbatim", "text": text, "id": "job-%s" % stream})
        objects.append({"object_type": "links", "links": [
            (download_href(rel), "The whole file: %s.%s (%s)" % (job_id, stream,
                                                               human_size(size)))]})
    declared = _declared_outputs(ctx, record)
    if declared and record["STATUS"] in J.FINAL_STATES:
        objects.append(O.header("Files the job keeps (OUTPUTFILES)"))
        objects.append(O.table("outputfiles", ("In your home", "Size", "Written by the job as"),
                               declared))
    try:
        names = sorted(os.listdir(ctx.home.resolve(out_dir)))
    except (OSError, MigError):
        names = []
    if names:
        objects.append(O.header("Output files"))
        rows = []
        for name in names:
            try:
                size = human_size(os.path.getsize(ctx.home.resolve("%s/%s" % (out_dir, name))))
            except (OSError, MigError):
                size = "-"
            rows.append(({"text": name, "href": download_href("%s/%s" % (out_dir, name))}, size))
        objects.append(O.table("joboutput", ("In %s" % out_dir, "Size"), rows))
    return objects


def _declared_outputs(ctx, record):
    """Rows (file in the home, linked when there; size; name in the job folder)."""
    spec = record["SPEC"]
    lines = jobspec.expand_variables(spec.get("OUTPUTFILES", []), record["JOB_ID"],
                                     spec.get("JOBNAME") or "")
    rows = []
    for line in lines:
        src, dst = jobspec.split_file_line(line)
        if "://" in dst:
            rows.append((dst, "-", src))
            continue
        try:
            path = ctx.home.resolve(dst, must_exist=True)
            size = os.path.getsize(path) if os.path.isfile(path) else None
        except (OSError, MigError):
            size = None
        if size is None:
            rows.append(({"text": dst}, "not there: see the job's io-status", src))
        else:
            rows.append(({"text": dst, "href": download_href(dst)}, human_size(size), src))
    return rows


@backend("jobtail", title="Live output", header="Live output",
         fields={"job_id": Field("job_id", required=True)})
def jobtail(ctx, args):
    """The end of a running job's stdout (the job page polls this)."""
    record = ctx.grid.jobs.get(ctx.user, args["job_id"])
    text = ctx.grid.live_output(record)
    # href: the html view of this page (its own URL as JSON) keeps polling like the job page
    href = page_url("jobtail", job_id=record["JOB_ID"], output_format="json")
    return O.Result([{"object_type": "tail", "text": text or "", "href": href,
                      "running": record["STATUS"] == J.EXECUTING}])
