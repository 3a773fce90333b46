"""Portal pages: Dashboard, Jobs, the job page, Submit Job, Settings and the
listing pages.  They are backends like any other (so scripts can read them
as JSON too); the operations themselves stay in their own backends."""

import os
import time
import urllib.parse

from mig.backends import Field, backend
from mig.backends.jobs import asctime, job_object, live, pending, run_started, submit_text
from mig.core import jobspec
from mig.core import jobs as J
from mig.core.jobindex import SEARCH_COUNT_LIMIT
from mig.errors import ClientError, MigError, MrslError
from mig.render import objects as O

PER_PAGE = 50
def page_url(backend_name, /, **query):
    return "/cgi-bin/%s.py" % backend_name + ("?" + urllib.parse.urlencode(query) if query else "")


@backend("dashboard", title="Dashboard", header="Dashboard")
def dashboard(ctx, args):
    """Your jobs per state, the resources that can run them, disk use and certificate."""
    grid, user = ctx.grid, ctx.user
    counts = grid.jobs.state_counts(user)
    total = sum(counts.values())
    objects = [live(ctx, any(counts[s] for s in J.PENDING_STATES)), O.text("Welcome, %s. You have %d job%s." % (user, total, "" if total == 1 else "s")),
               {"object_type": "cards", "items": [
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


def _date(text, what):
    if not text:
        return 0
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d")) - time.timezone
    except ValueError:
        raise ClientError("%s: %r is not a date like 2026-11-22" % (what, text)) from None


@backend("jobman", title="Jobs", header="Jobs",
         fields={"state": Field("word", help="only jobs in this state"),
                 "name": Field("text", help="part of the job name or id"),
                 "since": Field("text", help="received on or after YYYY-MM-DD"),
                 "until": Field("text", help="received on or before YYYY-MM-DD"),
                 "archived": Field("word", help="yes: search the archive of old jobs"),
                 "page": Field("number", default=("1",))})
def jobman(ctx, args):
    """Your jobs, newest first, filtered and paged; act on many at once."""
    state = args["state"].upper()
    if state and state not in J.STATES:
        raise ClientError("unknown state %r" % args["state"])
    page = max(1, int(args["page"] or 1))
    start = (page - 1) * PER_PAGE
    jobs = ctx.grid.jobs
    archived = args["archived"].lower() in ("yes", "1", "on", "true")
    searched = bool(args["name"] or args["since"] or args["until"] or archived)
    if searched:
        since = _date(args["since"], "since")
        until = _date(args["until"], "until") + 86400 if args["until"] else None
        matched, entries = jobs.index.search(ctx.user, args["name"], since, until,
                                             state or None, start, PER_PAGE, archived)
    else:  # the common case reads only the page
        matched = jobs.index.total(ctx.user, state or None)
        entries = jobs.index.page(ctx.user, state or None, start, PER_PAGE)
    rows = []
    for entry in entries:
        rows.append([{"checkbox": "job_id", "value": entry.job_id},
                     {"text": entry.job_id, "href": page_url("jobview", job_id=entry.job_id)},
                     {"text": entry.state, "state": entry.state}, entry.name,
                     asctime(entry.received)])
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
                 "options": [("", "current jobs"), ("yes", "the archive of old jobs")]}]}
    capped = searched and matched > SEARCH_COUNT_LIMIT  # a search counts no further
    pages = max(1, (min(matched, SEARCH_COUNT_LIMIT) if searched else matched)
                + PER_PAGE - 1) // PER_PAGE
    query = {k: args[k] for k in ("state", "name", "since", "until", "archived") if args[k]}
    href = page_url("jobman", **query) + ("&" if query else "?") + "page={page}"
    near = sorted(set([1, pages] + list(range(max(1, page - 3), min(pages, page + 3) + 1))))
    table = O.table("jobs", ("", "Job ID", "Status", "Name", "Received"), rows)
    table["select"] = {"backend": "jobmanaction", "name": "job_id",
                       "actions": [("cancel", "Cancel"), ("freeze", "Freeze"),
                                   ("thaw", "Thaw"), ("resubmit", "Resubmit")]}
    table["empty"] = "No jobs match."
    return O.Result([live(ctx, pending(ctx.grid, ctx.user)), form,
                     {"object_type": "links", "links": [(page_url("sweepstatus"),
                                                                "Parameter sweeps")]},
                     O.text("More than %d jobs match; the newest are shown." % SEARCH_COUNT_LIMIT
                            if capped else
                            "%d job%s match." % (matched, "" if matched == 1 else "s")),
                     table, {"object_type": "pager", "page": page, "pages": near,
                             "href": href}])


@backend("jobmanaction", title="Jobs", header="Jobs", state_changing=True,
         fields={"job_id": Field("job_id", multi=True, required=True),
                 "action": Field("word", required=True)})
def jobmanaction(ctx, args):
    """Cancel, freeze, thaw or resubmit the selected jobs."""
    if args["action"] == "resubmit":
        result = ctx.call("resubmit", {"job_id": args["job_id"]})
    elif args["action"] in J.ACTIONS:
        result = ctx.call("jobaction", {"job_id": args["job_id"], "action": [args["action"]]})
    else:
        raise ClientError("unknown action %r" % args["action"])
    result.objects.append({"object_type": "links", "links": [(page_url("jobman"), "Back to Jobs")]})
    return result


@backend("jobview", title="Job", header="Job",
         fields={"job_id": Field("job_id", required=True)})
def jobview(ctx, args):
    """One job: state, history, why it waits, outputs, and live output while it runs."""
    grid = ctx.grid
    record = grid.jobs.get(ctx.user, args["job_id"])
    job_id, state = record["JOB_ID"], record["STATUS"]
    job = job_object(grid, record, verbose=True)
    objects = [O.header(job_id), live(ctx, state not in J.FINAL_STATES, job_id)]
    summary = [("Status", {"text": state, "state": state}), ("Name", job.get("name", "")),
               ("Resource", job.get("resource", "")), ("Retries used", record.get("RETRY_COUNT", 0))]
    started = run_started(grid, record)
    if started == 0:
        summary.append(("Started", "not yet: handed to %s, it waits there for a free slot"
                        % job.get("resource", "its resource")))
    elif started:
        left = int(record["SPEC"]["CPUTIME"]) - (time.time() - started)
        summary.append(("Started", "%s (CPUTIME left: %d s)" % (asctime(started),
                                                                max(0, left))))
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
    objects.append(O.header("History"))
    objects.append(O.table("history", ("State", "Time (UTC)", "Note"), job["history"]))
    if record.get("EXIT_CODES"):
        objects.append(O.header("Exit codes"))
        objects.append(O.table("exitcodes", ("Command", "Exit code"),
                               [tuple(p) for p in record["EXIT_CODES"]]))
    if state == J.EXECUTING:
        objects.append(O.header("Live output (stdout)"))
        objects.append({"object_type": "tail", "text": "",
                        "href": page_url("jobtail", job_id=job_id, output_format="json")})
    out_dir = "job_output/%s" % job_id
    try:
        names = sorted(os.listdir(ctx.home.resolve(out_dir)))
    except (OSError, MigError):
        names = []
    if names:
        objects.append(O.header("Output files"))
        objects.append({"object_type": "links", "links": [
            ("/cert_redirect/%s/%s" % (out_dir, n), n) for n in names]})
    objects.append(O.header("Job description"))
    objects.append(O.verbatim(record.get("MRSL") or jobspec.to_mrsl(record["SPEC"])))
    return O.Result(objects)


@backend("jobtail", title="Live output", header="Live output",
         fields={"job_id": Field("job_id", required=True)})
def jobtail(ctx, args):
    """The end of a running job's stdout (the job page polls this)."""
    record = ctx.grid.jobs.get(ctx.user, args["job_id"])
    text = None
    executor = ctx.grid.executors.get(record.get("EXECUTOR", ""))
    if record["STATUS"] == J.EXECUTING and executor is not None and hasattr(executor, "live_output"):
        text = executor.live_output(record["JOB_ID"])
    # href: the html view of this page (its own URL as JSON) keeps polling like the job page
    href = page_url("jobtail", job_id=record["JOB_ID"], output_format="json")
    return O.Result([{"object_type": "tail", "text": text or "", "href": href,
                      "running": record["STATUS"] == J.EXECUTING}])


def fields_form(values=None, error=None):
    """The Submit Job form with one input per keyword, from the keyword table."""
    values = values or {}
    fields = []
    for kw in jobspec.KEYWORDS:
        value = values.get(kw.name, "")
        field = {"name": kw.name, "label": "%s (%s)" % (kw.title, kw.name), "value": value,
                 "help": kw.help.split(". ")[0].rstrip(".") + ".",
                 "help_href": page_url("docs", topic="mrsl") + "#" + kw.name}
        if kw.type.startswith("multiple"):
            field.update(type="textarea", rows=4 if kw.name != "EXECUTE" else 6)
        elif kw.type == "boolean":
            field.update(type="select", options=[("", "default"), ("True", "True"),
                                                 ("False", "False")])
        elif kw.choices:
            field.update(type="select", options=[("", "default")] + [(c, c) for c in kw.choices])
        if error is not None and error.keyword == kw.name:
            field["error"] = error.message
        fields.append(field)
    return {"object_type": "form", "action": "submitfields", "submit": "Submit job",
            "fields": fields}


def _tabs(active):
    return {"object_type": "tabs", "tabs": [
        (page_url("submitjob", style=style), label, style == active)
        for style, label in (("fields", "Fields"), ("textarea", "mRSL text"),
                             ("files", "Upload files"), ("sweep", "Parameter sweep"))]}


def sweep_form():
    return {"object_type": "form", "action": "sweep", "submit": "Submit sweep", "fields": [
        {"name": "mrsltextarea_0", "label": "Job description", "type": "textarea", "rows": 10,
         "value": "::EXECUTE::\necho +x+ +y+\n\n::JOBNAME::\nsweep-+INDEX+\n",
         "help": "+name+ is replaced by a parameter's value, +INDEX+ by the job's number"},
        {"name": "params", "label": "Parameters", "type": "textarea", "rows": 4,
         "value": "x=1:11\ny=a,b,c", "help": "one per line: name=v1,v2,... or name=start:stop[:step]"},
        {"name": "mode", "label": "Combine", "type": "select", "value": "product",
         "options": [("product", "every combination"), ("zip", "n-th values together")]}]}


def textarea_form(ctx, text=None, error=None):
    if text is None:
        try:
            with open(ctx.home.resolve(".default.mrsl"), encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, MigError):
            text = "::EXECUTE::\necho hello grid\n"
    return {"object_type": "form", "action": "submitmrsltext", "submit": "Submit job",
            "fields": [{"name": "mrsltextarea_0", "label": "Job description", "type": "textarea",
                        "value": text, "rows": 16, "error": error,
                        "help": "mRSL or JSON", "help_href": page_url("docs", topic="mrsl")},
                       {"name": "save_as_default", "label": "Save as my default job",
                        "type": "checkbox"}]}


def files_form():
    return {"object_type": "form", "action": "upload", "submit": "Upload", "multipart": True,
            "progress": True, "fields": [
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
        style, form = "fields", fields_form()
    return O.Result([_tabs(style), form])


def _submitted(record):
    return [{"object_type": "success", "text": "Job %s submitted." % record["JOB_ID"]},
            {"object_type": "links", "links": [
                (page_url("jobview", job_id=record["JOB_ID"]), "Open the job"),
                (page_url("jobman"), "All jobs"), (page_url("submitjob"), "Submit another")]}]


@backend("submitfields", title="Submit Job", header="Submit Job", state_changing=True,
         fields={kw.name: Field("text") for kw in jobspec.KEYWORDS})
def submitfields(ctx, args):
    """Submit a job from one form field per keyword."""
    lines = []
    for kw in jobspec.KEYWORDS:
        value = args.get(kw.name, "").strip()
        if value:
            lines.append("::%s::\n%s\n" % (kw.name, value.replace("\r\n", "\n")))
    text = "\n".join(lines)
    try:
        return O.Result(_submitted(submit_text(ctx, text)))
    except MrslError as exc:
        return O.Result([_tabs("fields"), fields_form(args, exc)], exc.exit_code, exc.description)


@backend("submitmrsltext", title="Submit Job", header="Submit Job", state_changing=True,
         fields={"mrsltextarea_0": Field("text", required=True), "save_as_default": Field("bool")})
def submitmrsltext(ctx, args):
    """Submit one job typed as mRSL (the Submit Job page's text style)."""
    text = args["mrsltextarea_0"].replace("\r\n", "\n")
    if args["save_as_default"].lower() in ("true", "1", "on", "yes"):
        with open(ctx.home.resolve(".default.mrsl"), "w", encoding="utf-8") as handle:
            handle.write(text)
    try:
        return O.Result(_submitted(submit_text(ctx, text)))
    except MrslError as exc:
        return O.Result([_tabs("textarea"), textarea_form(ctx, text, exc.message)],
                        exc.exit_code, exc.description)
