"""Job backends: submit, textarea, jobstatus, jobaction, canceljob, resubmit,
jobfeasible, mrslview.  MiG's field names and reply layouts."""

import os
import time

from mig.backends import Field, backend, truthy
from mig.core import jobspec, scheduler, submission
from mig.core import jobs as J
from mig.errors import ClientError, FileNotFound, MigError, SystemFailure
from mig.render import objects as O

SUBMIT_COLUMNS = ("File", "Status", "Job ID", "Message")
ACTION_COLUMNS = ("Job ID", "Old status", "New status", "Message")
MAX_MRSL_BYTES = 1024 * 1024
MAX_BATCH = 1000


INLINE_OUTPUT_BYTES = 64 * 1024  # the end of stdout and stderr a job page shows


def asctime(ts):
    return time.asctime(time.gmtime(ts)) if ts else ""


def failed_exit(record):
    """The last non-zero exit code of a job's commands, or None: a job whose
    commands failed still FINISHES (as in MiG), but must not look like a success."""
    codes = [code for _command, code in record.get("EXIT_CODES", []) if code]
    return codes[-1] if codes else None


def exit_badge(code):
    return {"text": "exit %d" % code, "class": "exit-failed",
            "title": "a command of this job exited with %d" % code}


def status_cell(state, code=None):
    """A job's state in a table, marked when its commands exited non-zero."""
    cell = {"text": state, "state": state}
    if code is not None:
        cell["badge"] = exit_badge(code)
    return cell


def retries_text(record):
    """Retries used, as the grid counts them: RETRY_COUNT counts failed runs,
    each failed run was retried until RETRIES were spent (then the job FAILED
    "after RETRIES retries"), so the retries used are at most RETRIES."""
    allowed = int(record["SPEC"].get("RETRIES") or 0)
    failed = record.get("RETRY_COUNT", 0)
    text = "%d of %d" % (min(failed, allowed), allowed)
    if failed:
        text += " (%d failed run%s)" % (failed, "" if failed == 1 else "s")
    return text


def output_tail(home, rel, limit=INLINE_OUTPUT_BYTES):
    """(the last `limit` bytes of a home file as text, its size in bytes), or
    (None, 0) when it is missing: a job page shows output inline, bounded."""
    try:
        with open(home.resolve(rel, must_exist=True), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - limit))
            data = handle.read(limit)
    except (OSError, MigError):
        return None, 0
    text = data.decode("utf-8", "replace")
    if size > limit and "\n" in text:  # start at a whole line
        text = text.split("\n", 1)[1]
    return text, size


def live(ctx, active, job_id="", every=0):
    """The marker of a page that follows changes by itself (see portal.js):
    while active it polls jobchanges from this moment (the server's
    watermark), or with every=N simply fetches itself every N seconds, and it
    shows when it last updated."""
    since = ctx.grid.jobs.changed_since(ctx.user, time.time(), limit=1)[0]
    return {"object_type": "live", "since": since, "job_id": job_id, "active": bool(active),
            "every": every, "updated": time.strftime("%H:%M:%S", time.gmtime())}


def pending(grid, user):
    """Whether any of the user's jobs can still change state."""
    counts = grid.jobs.state_counts(user)
    return any(counts[state] for state in J.PENDING_STATES)


def submit_text(ctx, text, idempotency_key=None, durable=True):
    """Parse, check rights and runtime environments, store: the one submit path."""
    grid = ctx.grid
    spec = submission.prepare(grid.vgrids.user_vgrids(ctx.user), text,
                              grid.runtimeenvs_for(ctx.user),
                              grid.config.job_retries)
    return grid.jobs.submit(ctx.user, spec, text, idempotency_key=idempotency_key,
                            durable=durable)


def _submit_rows(ctx, items):
    """items: [(display name, text or exception)] -> (rows, exit code).

    The jobs of one request are stored with one journal write and sync: all
    that parse are kept, or (the disk is full) none, each row saying so."""
    rows, code, good = [], 0, []
    grid = ctx.grid
    vgrids = grid.vgrids.user_vgrids(ctx.user)
    for name, text in items:
        if isinstance(text, MigError):
            rows.append((name, 0, "", text.message))
            code = code or text.exit_code
            continue
        try:
            spec = submission.prepare(vgrids, text, grid.runtimeenvs_for(ctx.user),
                                      grid.config.job_retries)
        except MigError as exc:
            rows.append((name, 0, "", "parse failed: %s" % exc.message))
            code = code or exc.exit_code
            continue
        good.append((len(rows), name, spec, text))
        rows.append(None)
    if good:
        try:
            records = grid.jobs.submit_many(ctx.user, [(spec, text) for _i, _n, spec, text
                                                       in good])
            for (i, name, _spec, _text), record in zip(good, records):
                rows[i] = (name, 1, record["JOB_ID"], "")
        except SystemFailure as exc:
            for i, name, _spec, _text in good:
                rows[i] = (name, 0, "", "not submitted: %s" % exc.message)
            code = exc.exit_code
    return rows, code


@backend("submit", title="Submit Job", header="Submit Job", state_changing=True,
         fields={"path": Field("path", multi=True, required=True,
                               help="mRSL file(s) in your home; wildcards allowed"),
                 "flags": Field("flags")})
def submit(ctx, args):
    """Submit mRSL files that are already in your home."""
    items, objects = [], []
    for pattern in args["path"]:
        try:
            for path in ctx.home.expand(pattern):
                rel = ctx.home.relative(path)
                if os.path.getsize(path) > MAX_MRSL_BYTES:
                    items.append((rel, ClientError("%s: larger than 1 MB" % rel)))
                    continue
                with open(path, encoding="utf-8", errors="replace") as handle:
                    items.append((rel, handle.read()))
        except FileNotFound as exc:
            objects.append(O.error(exc.message))
            return O.Result(objects + [O.error("No job submit status found!")],
                            FileNotFound.exit_code)
    rows, code = _submit_rows(ctx, items)
    return O.Result(objects + [O.table("submitstatuslist", SUBMIT_COLUMNS, rows)], code)


@backend("textarea", title="Submit Job", header="Submit Job", state_changing=True,
         fields={"mrsltextarea_N": Field("text", required=True,
                                         help="mRSL (or JSON) jobs: mrsltextarea_0, "
                                              "mrsltextarea_1, ... (at most %d)" % MAX_BATCH),
                 "save_as_default": Field("bool"), "idempotency_key": Field("word"),
                 "flags": Field("flags")})
def textarea(ctx, args):
    """Submit jobs given as mRSL text (or JSON) in the request, one per field."""
    texts = [text for _number, text in args["mrsltextarea_N"]]
    if len(texts) > MAX_BATCH:
        raise ClientError("at most %d jobs per request (got %d)" % (MAX_BATCH, len(texts)))
    if truthy(args["save_as_default"]):
        with open(ctx.home.resolve(".default.mrsl"), "w", encoding="utf-8") as handle:
            handle.write(texts[0])
    if args["idempotency_key"] and len(texts) == 1:
        try:
            record = submit_text(ctx, texts[0], args["idempotency_key"])
            rows, code = [("textarea", 1, record["JOB_ID"], "")], 0
        except SystemFailure as exc:
            rows, code = [("textarea", 0, "", "not submitted: %s" % exc.message)], exc.exit_code
        except MigError as exc:
            rows, code = [("textarea", 0, "", "parse failed: %s" % exc.message)], exc.exit_code
    else:
        rows, code = _submit_rows(ctx, [("textarea", t) for t in texts])
    return O.Result([O.table("submitstatuslist", SUBMIT_COLUMNS, rows)], code)


def waiting_summary(grid, record, now=None):
    """Plain words on why a queued job waits, per resource."""
    fitting = grid.fitting_units(record, now)
    if fitting:  # the common case, answered from the scheduler's cache
        return ["fits %s; waiting for a free slot" % ", ".join(fitting)], {}
    units = grid.registry.all()
    report = scheduler.explain(record["SPEC"], units, now)
    if not units:
        return ["no resources are registered on this grid"], report
    lines = ["no resource can run this job:"]
    lines += ["%s: %s" % (unit, "; ".join(why)) for unit, why in report.items()]
    return lines, report


def job_object(grid, record, verbose=False):
    """The job object of jobstatus (MiG keys, plus exit codes and reasons)."""
    job = {"job_id": record["JOB_ID"], "status": record["STATUS"],
           "name": record["SPEC"].get("JOBNAME", "")}
    for state in ("RECEIVED", "QUEUED", "EXECUTING", "FINISHED", "FAILED", "CANCELED",
                  "EXPIRED", "RETRY", "FROZEN"):
        value = record.get("%s_TIMESTAMP" % state)
        if value:
            job["%s_timestamp" % state.lower()] = asctime(value)
    if record.get("RESOURCE_ID") and record["STATUS"] != J.QUEUED:
        job["resource"] = record["RESOURCE_ID"]
    job["exit_codes"] = [list(pair) for pair in record.get("EXIT_CODES", [])]
    if record.get("VERIFIED") and record["VERIFIED"] != "NO":
        job["verified"] = record["VERIFIED"]
    message = record.get("%s_MESSAGE" % record["STATUS"])
    if message:
        job["message"] = message
    if record["STATUS"] in J.WAITING_STATES:
        job["waiting"], job["schedule"] = waiting_summary(grid, record)
    if record.get("RETRY_COUNT"):
        job["retries"] = record["RETRY_COUNT"]
    job["history"] = [[state, asctime(ts), msg] for state, ts, msg in record.get("HISTORY", [])]
    if verbose:
        job["execute"] = "; ".join(record["SPEC"]["EXECUTE"])[:256]
        job["execution_histories"] = record.get("EXECUTION_HISTORY", [])
    return job


MAX_STATUS_JOBS = 1000  # jobs in one jobstatus reply: the next ones come with offset=


@backend("jobstatus", title="Job Status", header="MiG UNSORTED  JOB STATUS",
         fields={"job_id": Field("job_id", default=("*",), multi=True),
                 "max_jobs": Field("number", default=("1000000",)),
                 "offset": Field("number", default=("0",),
                                 help="skip this many matching jobs (oldest first)"),
                 "flags": Field("flags"), "project_name": Field("word")})
def jobstatus(ctx, args):
    """Status of your jobs (all, or those matching job_id patterns), at most
    1000 per reply: ask for the next ones with offset."""
    jobs = ctx.grid.jobs
    asked = int(args["max_jobs"] or 1000000)
    limit = min(asked, MAX_STATUS_JOBS)
    offset = int(args["offset"] or 0)
    matched, ids = jobs.match(ctx.user, args["job_id"], args["project_name"] or None,
                              offset, limit)
    shared = shared_jobs(ctx, args["job_id"], ids) if offset == 0 else []
    matched, ids = matched + len(shared), ids + shared
    sort = "s" in args["flags"]
    header = "MiG %s  JOB STATUS" % ("SORTED" if sort else "UNSORTED")
    if not matched and args["job_id"] == ["*"]:
        return O.Result([O.header(header), O.text("You have no jobs yet.")])
    if not matched:
        objects = [O.header(header)]
        objects += [O.error("%s: You do not have any matching job IDs!" % p)
                    for p in args["job_id"]]
        return O.Result(objects, ClientError.exit_code)
    if sort:
        entries = {j: jobs.entry(j) for j in ids}
        ids.sort(key=lambda j: entries[j].changed if entries[j] else 0)
    objects = [O.header(header)]
    if offset == 0 and asked < matched and asked <= MAX_STATUS_JOBS:
        objects.append(O.text("Only showing first %d of the %d matching jobs as requested"
                              % (asked, matched)))
    elif offset + len(ids) < matched or offset:
        objects.append(O.text("Showing jobs %d to %d of the %d matching jobs (oldest first); "
                              "ask for the next ones with offset=%d"
                              % (offset + 1, offset + len(ids), matched, offset + len(ids))))
    verbose = "v" in args["flags"]
    listed = [job_object(ctx.grid, jobs.record(j), verbose) for j in ids]
    objects.append(O.job_list(listed))
    return O.Result(objects)


def shared_jobs(ctx, patterns, own):
    """Other users' jobs named by exact id (no wildcard) that they let the caller see."""
    found = []
    for job_id in patterns:
        if job_id in own or any(c in job_id for c in "*?["):
            continue
        try:
            owner = ctx.grid.jobs.record(job_id)["OWNER"]
        except MigError:
            continue
        if owner != ctx.user and ctx.grid.visibility.may_see(ctx.user, "job", job_id, [owner]):
            found.append(job_id)
    return found


def none_matched(patterns):
    """MiG's reply when no job of the caller matches the given ids or patterns."""
    return O.Result([O.error("%s: You do not have any matching job IDs!" % ", ".join(patterns))],
                    ClientError.exit_code)


def _act_on(ctx, patterns, action):
    rows, code = [], 0
    ids = ctx.grid.jobs.match(ctx.user, patterns)
    if not ids:
        return none_matched(patterns)
    if len(ids) > J.MAX_ACTION_JOBS:
        raise ClientError("at most %d jobs per request (%d matched)" % (J.MAX_ACTION_JOBS, len(ids)))
    for job_id in ids:
        try:
            old, new = ctx.grid.jobs.act(ctx.user, job_id, action)
            rows.append((job_id, old, new, ""))
        except MigError as exc:
            entry = ctx.grid.jobs.entry(job_id)
            status = entry.state if entry else "-"
            rows.append((job_id, status, status, exc.message))
            code = code or exc.exit_code
    return O.Result([O.table("changedstatusjobs", ACTION_COLUMNS, rows)], code)


@backend("jobaction", title="Job Action", header="Job Action", state_changing=True,
         fields={"job_id": Field("job_id", multi=True, required=True),
                 "action": Field("word", required=True, help="cancel, freeze or thaw"),
                 "flags": Field("flags")})
def jobaction(ctx, args):
    """Cancel, freeze or thaw jobs."""
    if args["action"] not in J.ACTIONS:
        raise ClientError("unknown action %r: use cancel, freeze or thaw" % args["action"])
    return _act_on(ctx, args["job_id"], args["action"])


@backend("canceljob", title="Cancel Job", header="Cancel Job", state_changing=True,
         fields={"job_id": Field("job_id", multi=True, required=True), "flags": Field("flags")})
def canceljob(ctx, args):
    """Cancel jobs (same as jobaction with action=cancel)."""
    return _act_on(ctx, args["job_id"], "cancel")


@backend("resubmit", title="Resubmit Job", header="Resubmit Job", state_changing=True,
         fields={"job_id": Field("job_id", multi=True, required=True), "flags": Field("flags")})
def resubmit(ctx, args):
    """Submit copies of earlier jobs as new jobs."""
    ids = ctx.grid.jobs.match(ctx.user, args["job_id"])
    if not ids:
        return none_matched(args["job_id"])
    if len(ids) > J.MAX_RESUBMIT_JOBS:
        raise ClientError("at most %d jobs per resubmit (%d matched)"
                          % (J.MAX_RESUBMIT_JOBS, len(ids)))
    rows = []
    for job_id in ids:
        record = ctx.grid.jobs.resubmit(ctx.user, job_id)
        rows.append((job_id, 1, record["JOB_ID"], ""))
    return O.Result([O.table("resubmitobjs",
                             ("Job ID", "Resubmit status", "New job ID", "Message"), rows)])


@backend("jobfeasible", title="Job Feasibility", header="Job Feasibility",
         fields={"job_id": Field("job_id", multi=True, required=True), "flags": Field("flags")})
def jobfeasible(ctx, args):
    """For each resource: can it run the job, and if not, why not (plain words)."""
    ids = ctx.grid.jobs.match(ctx.user, args["job_id"])
    if not ids:
        return none_matched(args["job_id"])
    rows = []
    for job_id in ids[:J.MAX_ACTION_JOBS]:
        record = ctx.grid.jobs.record(job_id)
        for unit in ctx.grid.registry.all():
            why = scheduler.reasons(record["SPEC"], unit)
            if why:
                verdict = "RED"
            elif not unit.online:
                verdict, why = "ORANGE", ["fits, but the resource is offline: %s"
                                          % (unit.down_reason or "stopped")]
            elif unit.free_slots() == 0:
                verdict, why = "YELLOW", ["fits; all slots are busy now"]
            else:
                verdict, why = "GREEN", ["fits and has a free slot"]
            rows.append((job_id, unit.unit_id, verdict, "; ".join(why)))
        if not ctx.grid.registry.all():
            rows.append((job_id, "-", "RED", "no resources are registered on this grid"))
    passes, when = ctx.grid.scheduling_pass()
    return O.Result([O.table("jobfeasibility", ("Job ID", "Resource", "Verdict", "Reasons"),
                             rows),
                     O.text("Scheduling pass %d ended %s UTC: a job that waits now was "
                            "considered in every pass since it was submitted."
                            % (passes, time.strftime("%H:%M:%S", time.gmtime(when))))])


@backend("mrslview", title="mRSL", header="mRSL",
         fields={"job_id": Field("job_id", required=True), "flags": Field("flags")})
def mrslview(ctx, args):
    """The job description as submitted."""
    record = ctx.grid.jobs.get(ctx.user, args["job_id"])
    return O.Result([O.file_output(record.get("MRSL") or jobspec.to_mrsl(record["SPEC"]))])
