"""Portal pages: Dashboard, Jobs, the job page, Submit Job, Settings and the
listing pages.  They are backends like any other (so scripts can read them
as JSON too); the operations themselves stay in their own backends."""

import os
import time
import urllib.parse

from mig.backends import Field, backend, truthy
from mig.backends.jobs import asctime, job_object, live, pending, submit_text
from mig.backends.jobs import (INLINE_OUTPUT_BYTES, exit_badge, failed_exit, output_tail,
                               retries_text, status_cell)
from mig.core import access, jobspec, submission
from mig.core import jobs as J
from mig.core.jobindex import ORDERS, SEARCH_COUNT_LIMIT, SORT_WINDOW
from mig.core.quota import human_size
from mig.errors import ClientError, InvalidArgument, MigError, MrslError
from mig.render import objects as O

PER_PAGE = 50
def page_url(backend_name, /, **query):
    return "/cgi-bin/%s.py" % backend_name + ("?" + urllib.parse.urlencode(query) if query else "")


SAMPLE_JOB = """::JOBNAME::
sample

::EXECUTE::
echo Hello from the sample job +JOBID+
uname -s -m > sample.txt
date -u >> sample.txt

::OUTPUTFILES::
sample.txt sample-+JOBID+.txt

::CPUTIME::
60
"""


@backend("dashboard", title="Dashboard", header="Dashboard")
def dashboard(ctx, args):
    """Your jobs per state, the resources that can run them, disk use and certificate.

    A user without jobs gets a sample job to run and the way to the docs instead."""
    grid, user = ctx.grid, ctx.user
    counts = grid.jobs.state_counts(user)
    total = sum(counts.values())
    objects = [live(ctx, any(counts[s] for s in J.PENDING_STATES)),
               O.text("Welcome, %s. You have %d job%s." % (user, total,
                                                          "" if total == 1 else "s"))]
    objects += _job_charts(grid, user, counts) if total else _first_steps()
    units = grid.registry.all()
    objects.append(O.header("Resources"))
    objects.append(O.table("resources", ("Exe unit", "Specs", "Busy slots", "State"),
                           [(u.unit_id, u.specs_text(), "%d of %d" % (len(u.running), u.slots),
                             "online" if u.online else "offline: %s" % u.down_reason)
                            for u in units]))
    account = grid.users.get(user)
    damaged = grid.jobs.index.quarantined() if account.get("admin") else []
    if damaged:
        objects.append(O.header("Damaged job records"))
        objects.append(O.error("Job records set aside because their stored bytes are "
                               "damaged (quarantined in the job database; see the log): %d"
                               % len(damaged)))
        objects.append(O.table("quarantined", ("Job ID", "Owner", "Why", "When"),
                               [(j, o, why, asctime(at)) for j, o, why, at in damaged[-20:]]))
    left = (account.get("not_after", 0) - time.time()) / 86400
    objects.append(O.header("Account"))
    objects.append(O.table("account", ("What", "Value"), [
        ("Home disk use", grid.quota.describe(ctx.home.root)),
        ("Certificate", account["dn"]),
        ("Certificate expires", "%s (in %d days)" % (asctime(account.get("not_after")), left)),
    ]))
    return O.Result(objects)


def _job_charts(grid, user, counts):
    """Cards and charts of the user's jobs (shown once there are jobs)."""
    objects = [{"object_type": "cards", "items": [
        {"label": state.title(), "value": counts[state]} for state in J.STATES]}]
    objects.append({"object_type": "chart", "kind": "bar", "title": "Jobs per state",
                    "labels": list(J.STATES),
                    "series": [{"label": "jobs", "values": [counts[s] for s in J.STATES]}]})
    days = grid.jobs.activity_days(user, 14)
    objects.append({"object_type": "chart", "kind": "line",
                    "title": "Submitted and finished per day (14 days, UTC)",
                    "labels": [time.strftime("%m-%d", time.gmtime(d[0])) for d in days],
                    "series": [{"label": "submitted", "values": [d[1] for d in days]},
                               {"label": "finished", "values": [d[2] for d in days]}]})
    return objects


def _first_steps():
    """What a user without jobs can do first: run a sample job with one click."""
    return [O.header("Get started"),
            O.text("Run a ready sample job: it prints a greeting, writes a small file and "
                   "keeps it in your home as sample-JOBID.txt. You land on the result, "
                   "with a link to the job's page."),
            {"object_type": "post_button", "backend": "samplejob", "fields": {},
             "text": "Run a sample job", "style": "primary"},
            {"object_type": "links", "links": [
                (page_url("docs", topic="start"), "Getting started"),
                (page_url("submitjob"), "Submit your own job"),
                (page_url("downloads"), "Downloads: certificates, keys and scripts")]}]


@backend("samplejob", title="Sample job", header="Sample job", state_changing=True)
def samplejob(ctx, args):
    """Submit the ready sample job of the Dashboard (a first job in one click)."""
    record = submit_text(ctx, SAMPLE_JOB)
    return O.Result(_submitted(record))


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
    return O.Result(objects)


def _home_link(rel):
    return "/cert_redirect/" + urllib.parse.quote(rel.lstrip("/"))


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
            (_home_link(rel), "The whole file: %s.%s (%s)" % (job_id, stream,
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
            rows.append(({"text": name, "href": _home_link("%s/%s" % (out_dir, name))}, size))
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
            rows.append(({"text": dst, "href": _home_link(dst)}, human_size(size), src))
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


ESSENTIALS = ("EXECUTE", "INPUTFILES", "OUTPUTFILES", "CPUTIME", "MEMORY", "JOBNAME")
# The essentials in few words, two and three to a line: the form fits a screen.
ESSENTIAL_LAYOUT = {
    "EXECUTE": (None, "Shell command lines, run in order in one bash session."),
    "INPUTFILES": ("files", "Copied from your home before the job runs: 'src' or 'src dst' "
                            "per line."),
    "OUTPUTFILES": ("files", "Copied back to your home after it ran: 'src' or 'src dst' "
                             "per line."),
    "CPUTIME": ("limits", "Empty: 600."), "MEMORY": ("limits", "Empty: 64."),
    "JOBNAME": ("limits", "Optional, no spaces.")}
CHOICE_KEYWORDS = ("VGRID", "RUNTIMEENVIRONMENT", "MAXFILL")


def refused(objects, error, messages):
    """A refused form: for people the form again with its problems marked (see
    mig.render.html); for scripts MiG's exit code and error lines as before."""
    return O.Result([dict(O.error(m), wire_only=True) for m in messages] + list(objects),
                    error.exit_code, error.description)


def grid_choices(ctx):
    """What the grid has, offered as choices: the user's VGrids, the runtime
    environments and the architectures of the resources."""
    vgrids = access.user_vgrids(ctx.user)
    architectures = {u.architecture.upper() for u in ctx.grid.registry.all() if u.architecture}
    return {"VGRID": [(v, v) for v in vgrids] + ([("ANY", "ANY: every VGrid you are in")]
                                                 if len(vgrids) > 1 else []),
            "RUNTIMEENVIRONMENT": [(n, n) for n in
                                   sorted(ctx.grid.registry.known_runtimeenvs())],
            "MAXFILL": [(c, c) for c in jobspec.KEYWORD_BY_NAME["MAXFILL"].choices],
            "ARCHITECTURE": [("", "any")] + [(a, a) for a in sorted(architectures)
                                             if a in jobspec.ARCHITECTURES]}


def _with_kept(options, kept):
    """options plus the kept values that are not among them: nothing typed is lost."""
    known = {str(v) for v, _text in options}
    return list(options) + [(v, v) for v in kept if v not in known]


def _keyword_field(kw, value, choices, problem):
    """One keyword of the fields form; an empty field means the default it shows."""
    field = {"name": kw.name, "label": "%s (%s)" % (kw.title, kw.name), "value": value,
             "help": kw.help.split(". ")[0].rstrip(".") + ".", "error": problem,
             "help_href": page_url("docs", topic="mrsl") + "#" + kw.name,
             "advanced": kw.name not in ESSENTIALS}
    if kw.name in CHOICE_KEYWORDS:
        kept = [v.strip() for line in jobspec.field_lines(value) for v in line.split(",")
                if v.strip()]
        field.update(type="choices", value=kept, options=_with_kept(choices, kept),
                     none="none offered by this grid's resources yet")
    elif kw.type.startswith("multiple"):
        field.update(type="textarea", rows=4 if kw.name == "EXECUTE" else 2, compact=True,
                     placeholder=kw.example)
    elif kw.type == "boolean":
        field.update(type="select", options=[("", "default (%s)" % kw.default),
                                             ("True", "True"), ("False", "False")])
    elif choices is not None or kw.choices:
        options = choices or [("", "default (%s)" % (kw.default or "any"))] + [
            (c, c) for c in kw.choices]
        field.update(type="select", options=_with_kept(options, [value] if value else []))
    elif kw.default not in (None, ""):
        field.update(placeholder=str(kw.default),
                     help="%s Empty: %s." % (field["help"], kw.default))
    if kw.name in ESSENTIAL_LAYOUT:
        field["row"], field["help"] = ESSENTIAL_LAYOUT[kw.name]
    return field


SWEEP_EXAMPLE = {"mrsltextarea_0": "::EXECUTE::\necho +x+ +y+\n\n::JOBNAME::\nsweep-+INDEX+\n",
                 "params": "x=1:11\ny=a,b,c", "mode": "product"}


def _grid_problems(ctx, values, errors):
    """The VGrid and runtime environment checks a submission makes, run on
    their own when other fields failed: every problem is shown at once."""
    probe = {name: values[name] for name in ("VGRID", "RUNTIMEENVIRONMENT", "MOUNT")
             if name not in errors}
    try:
        submission.prepare(ctx.user, jobspec.fields_to_mrsl(dict(probe, EXECUTE="true")),
                           ctx.grid.registry.known_runtimeenvs(), ctx.grid.config.job_retries)
    except MrslError as exc:
        return {exc.keyword or "": exc}
    return {}


def _text_problem(exc):
    """Where in the typed text, in words: 'Line 8, CPUTIME: ...'."""
    where = ["Line %d" % exc.line] if exc.line is not None else []
    where += [exc.keyword] if exc.keyword else []
    return "%s: %s" % (", ".join(where), jobspec.reason(exc)) if where else exc.message


def fields_form(ctx, values=None, problems=None):
    """The Submit Job form: the essentials first, the other keywords folded
    away, choices from what the grid has; problems ({keyword: message}) are
    marked next to their fields, all at once."""
    values, problems = values or {}, problems or {}
    choices = grid_choices(ctx)
    fields = {kw.name: _keyword_field(kw, values.get(kw.name, ""), choices.get(kw.name),
                                      problems.get(kw.name)) for kw in jobspec.KEYWORDS}
    order = list(ESSENTIALS) + [kw.name for kw in jobspec.KEYWORDS if kw.name not in ESSENTIALS]
    other = [message for name, message in problems.items() if name not in fields]
    return {"object_type": "form", "action": "submitfields", "submit": "Submit job",
            "fields": [fields[name] for name in order], "error": "; ".join(other),
            "advanced": "More options: files, resources, VGrids, environment, ... (%d)"
                        % (len(order) - len(ESSENTIALS)),
            "problems_title": "The job was not submitted"}


def _tabs(active):
    return {"object_type": "tabs", "tabs": [
        (page_url("submitjob", style=style), label, style == active)
        for style, label in (("fields", "Fields"), ("textarea", "mRSL text"),
                             ("files", "Upload files"), ("sweep", "Parameter sweep"))]}


def sweep_form(values=None, problems=None):
    """The sweep form (an example filled in); a refused sweep keeps what was
    typed, with its problems next to their fields."""
    values, problems = values or SWEEP_EXAMPLE, problems or {}
    return {"object_type": "form", "action": "sweep", "submit": "Submit sweep",
            "problems_title": "The sweep was not submitted", "fields": [
                {"name": "mrsltextarea_0", "label": "Job description", "type": "textarea",
                 "rows": 10, "value": values.get("mrsltextarea_0", ""),
                 "error": problems.get("mrsltextarea_0"),
                 "help": "+name+ is replaced by a parameter's value, +INDEX+ by the job's "
                         "number"},
                {"name": "params", "label": "Parameters", "type": "textarea", "rows": 4,
                 "compact": True, "value": values.get("params", ""),
                 "error": problems.get("params"),
                 "help": "one per line: name=v1,v2,... or name=start:stop[:step]"},
                {"name": "mode", "label": "Combine", "type": "select",
                 "value": values.get("mode") or "product", "error": problems.get("mode"),
                 "options": _with_kept([("product", "every combination"),
                                        ("zip", "n-th values together")],
                                       [values.get("mode") or "product"])}]}


def textarea_form(ctx, text=None, error=None, save=False):
    """The mRSL text form: the user's default job, or the text just refused
    with its problem next to it."""
    if text is None:
        try:
            with open(ctx.home.resolve(".default.mrsl"), encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, MigError):
            text = "::EXECUTE::\necho hello grid\n"
    return {"object_type": "form", "action": "submitmrsltext", "submit": "Submit job",
            "problems_title": "The job was not submitted",
            "fields": [{"name": "mrsltextarea_0", "label": "Job description", "type": "textarea",
                        "value": text, "rows": 16, "error": error,
                        "help": "mRSL or JSON", "help_href": page_url("docs", topic="mrsl")},
                       {"name": "save_as_default", "label": "Save as my default job",
                        "type": "checkbox", "value": save}]}


def files_form():
    return {"object_type": "form", "action": "upload", "submit": "Upload", "multipart": True,
            "progress": True, "scripts": ["files.js"], "fields": [
                {"name": "files", "label": "Files", "type": "file", "multiple": True,
                 "help": ".mRSL files are submitted; archives can be unpacked"},
                {"name": "dir", "label": "Folder in your home", "value": "."},
                {"name": "submit", "label": "Submit uploaded .mRSL files", "type": "checkbox",
                 "value": True},
                {"name": "extract", "label": "Unpack .zip, .tar.gz and .tar.bz2 archives",
                 "type": "checkbox"}]}


@backend("submitjob", title="Submit Job", header="Submit Job",
         fields={"style": Field("word", default=("fields",))})
def submitjob(ctx, args):
    """Submit a job by fields, as mRSL text, or by uploading files."""
    style = args["style"]
    if style == "textarea":
        form = textarea_form(ctx)
    elif style == "files":
        form = files_form()
    elif style == "sweep":
        form = sweep_form()
    else:
        style, form = "fields", fields_form(ctx)
    return O.Result([_tabs(style), form])


def _submitted(record):
    return [{"object_type": "success", "text": "Job %s submitted." % record["JOB_ID"]},
            {"object_type": "links", "links": [
                (page_url("jobview", job_id=record["JOB_ID"]), "Open the job"),
                (page_url("jobman"), "All jobs"), (page_url("submitjob"), "Submit another")]}]


@backend("submitfields", title="Submit Job", header="Submit Job", state_changing=True,
         fields={kw.name: Field("text", multi=True) for kw in jobspec.KEYWORDS})
def submitfields(ctx, args):
    """Submit a job from one form field per keyword.
    A choice field may repeat; every problem is reported at once, each next to its field."""
    values = {kw.name: "\n".join(args[kw.name]) for kw in jobspec.KEYWORDS}
    errors = jobspec.check_fields(values, ctx.grid.config.job_retries)
    if errors:
        errors.update(_grid_problems(ctx, values, errors))
    else:
        try:
            return O.Result(_submitted(submit_text(ctx, jobspec.fields_to_mrsl(values))))
        except MrslError as exc:
            errors = {exc.keyword or "": exc}
    problems = {name: jobspec.reason(exc) for name, exc in errors.items()}
    return refused([_tabs("fields"), fields_form(ctx, values, problems)],
                   next(iter(errors.values())), [exc.message for exc in errors.values()])


@backend("submitmrsltext", title="Submit Job", header="Submit Job", state_changing=True,
         fields={"mrsltextarea_0": Field("text", help="the job as mRSL or JSON (required)"),
                 "save_as_default": Field("bool")})
def submitmrsltext(ctx, args):
    """Submit one job typed as mRSL (the Submit Job page's text style)."""
    text = args["mrsltextarea_0"].replace("\r\n", "\n")
    save = truthy(args["save_as_default"])
    if not text:
        return refused([_tabs("textarea"), textarea_form(
            ctx, text, "The job description is empty: write the commands to run under "
                       "::EXECUTE::, for example ::EXECUTE:: and then echo hello on the "
                       "next line.", save)],
            InvalidArgument(""), ["missing required field: mrsltextarea_0"])
    if save:
        with open(ctx.home.resolve(".default.mrsl"), "w", encoding="utf-8") as handle:
            handle.write(text)
    try:
        return O.Result(_submitted(submit_text(ctx, text)))
    except MrslError as exc:
        return refused([_tabs("textarea"), textarea_form(ctx, text, _text_problem(exc), save)],
                       exc, [exc.message])
