"""Parameter sweeps (sweep, sweepstatus, sweepaction) and polite polling
(jobchanges): many jobs from one request, and one cheap call for what changed."""

from mig.backends import Field, backend
from mig.backends.jobs import asctime, live, pending
from mig.backends.submitpages import refused, submit_tabs, sweep_form
from mig.core import jobs as J
from mig.errors import ClientError, InvalidArgument, MrslError
from mig.render import objects as O

STATE_COLUMNS = ("PENDING",) + J.STATES


def _rows(grid, sweeps):
    rows = []
    for sweep in sorted(sweeps, key=lambda s: s["CREATED"]):
        counts = grid.sweeps.counts(sweep)
        rows.append((sweep["SWEEP_ID"], sweep["STATUS"], sweep["COUNT"])
                    + tuple(counts.get(state, 0) for state in STATE_COLUMNS))
    return rows


def _table(grid, sweeps):
    table = O.table("sweeplist", ("Sweep ID", "Sweep status", "Jobs") + STATE_COLUMNS,
                    _rows(grid, sweeps))
    table["empty"] = "No sweeps."
    return table


def _sweep_field(exc):
    """The sweep form's field a refusal is about (the sweep store says it in words)."""
    if "mode must be" in exc.message:
        return "mode"
    if "not used in the job" in exc.message or (
            isinstance(exc, MrslError) and "takes a whole number" not in exc.message):
        return "mrsltextarea_0"
    return "params"


@backend("sweep", title="Parameter Sweep", header="Parameter Sweep", state_changing=True,
         fields={"mrsltextarea_0": Field("text",
                                         help="the job, with +NAME+ where a value goes and "
                                              "+INDEX+ for the job's number (required)"),
                 "params": Field("text",
                                 help="one per line: NAME=v1,v2,... or NAME=start:stop[:step] "
                                      "(required)"),
                 "mode": Field("word", default=("product",), help="product or zip"),
                 "idempotency_key": Field("word", help="a retried request makes no second sweep")})
def sweep(ctx, args):
    """Create a parameter sweep: one job per combination, made as the queue drains.
    A refused sweep comes back as its form, with the text and parameters kept."""
    grid = ctx.grid
    values = {name: args[name].replace("\r\n", "\n")
              for name in ("mrsltextarea_0", "params", "mode")}
    missing = {name: what for name, what in (
        ("mrsltextarea_0", "Write the job here: the commands under ::EXECUTE::, with +name+ "
                           "where a parameter's value goes."),
        ("params", "Give at least one parameter, like x=1,2,3 or x=1:11.")) if not values[name]}
    if missing:
        return refused([submit_tabs("sweep"), sweep_form(values, missing)],
                       InvalidArgument(""),
                       ["missing required field: %s" % name for name in missing])
    try:
        record = grid.sweeps.create(ctx.user, values["mrsltextarea_0"], values["params"],
                                    values["mode"], grid.config.job_retries,
                                    args["idempotency_key"] or None)
    except ClientError as exc:
        problems = {_sweep_field(exc): exc.message}
        return refused([submit_tabs("sweep"), sweep_form(values, problems)], exc, [exc.message])
    grid.poke_scheduler()
    return O.Result([O.text("Sweep %s accepted: %d jobs." % (record["SWEEP_ID"], record["COUNT"])),
                     _table(grid, [record]),
                     {"object_type": "links", "links": [
                         ("/cgi-bin/sweepstatus.py?sweep_id=%s" % record["SWEEP_ID"],
                          "Follow the sweep"), ("/cgi-bin/jobman.py", "Jobs")]}])


@backend("sweepstatus", title="Sweeps", header="Sweeps",
         fields={"sweep_id": Field("job_id", default=("*",), multi=True)})
def sweepstatus(ctx, args):
    """Your sweeps with their jobs per state (PENDING: not made yet)."""
    import fnmatch
    sweeps = [s for s in ctx.grid.sweeps.owned(ctx.user)
              if any(fnmatch.fnmatchcase(s["SWEEP_ID"], p) for p in args["sweep_id"])]
    if not sweeps and args["sweep_id"] != ["*"]:
        raise ClientError("%s: You do not have any matching sweeps!" % ", ".join(args["sweep_id"]))
    objects = [live(ctx, pending(ctx.grid, ctx.user)), _table(ctx.grid, sweeps)]
    for one in sweeps if len(sweeps) <= 20 else []:  # buttons for the sweeps on screen
        if one["STATUS"] == "ACTIVE":
            objects.append({"object_type": "post_button", "backend": "sweepaction",
                            "fields": {"sweep_id": one["SWEEP_ID"], "action": "cancel"},
                            "text": "Cancel %s" % one["SWEEP_ID"],
                            "confirm": "Cancel every job of this sweep?"})
        objects.append({"object_type": "post_button", "backend": "sweepaction",
                        "fields": {"sweep_id": one["SWEEP_ID"], "action": "resubmit"},
                        "text": "Resubmit %s" % one["SWEEP_ID"]})
    return O.Result(objects)


@backend("sweepaction", title="Parameter Sweep", header="Parameter Sweep", state_changing=True,
         fields={"sweep_id": Field("job_id", required=True),
                 "action": Field("word", required=True, help="cancel or resubmit")})
def sweepaction(ctx, args):
    """Cancel a whole sweep, or submit it again as a new sweep."""
    grid = ctx.grid
    if args["action"] == "cancel":
        cancelled = grid.sweeps.cancel(ctx.user, args["sweep_id"])
        message = "Sweep %s canceled (%d jobs canceled)." % (args["sweep_id"], cancelled)
        shown = [grid.sweeps.get(ctx.user, args["sweep_id"])]
    elif args["action"] == "resubmit":
        record = grid.sweeps.resubmit(ctx.user, args["sweep_id"], grid.config.job_retries)
        grid.poke_scheduler()
        message = "Sweep %s submitted again as %s." % (args["sweep_id"], record["SWEEP_ID"])
        shown = [record]
    else:
        raise ClientError("unknown action %r: use cancel or resubmit" % args["action"])
    return O.Result([O.text(message), _table(grid, shown)])


@backend("jobchanges", title="Job Changes", header="Job Changes",
         fields={"since": Field("text", default=("0",),
                                help="seconds since the epoch, from the previous reply")})
def jobchanges(ctx, args):
    """Jobs that changed state since a time: poll this instead of every job's status."""
    try:
        since = float(args["since"])
    except ValueError:
        raise ClientError("since must be a number of seconds, like 1790000000.5") from None
    jobs = ctx.grid.jobs
    # "now" is the since of the next call: every change up to it is in this
    # reply or an earlier one, even one whose write was still going on.
    now, changed = jobs.changed_since(ctx.user, since)
    rows = [(job_id, state, "%.6f" % when, asctime(when)) for job_id, state, when in changed]
    return O.Result([O.text("now: %.6f" % now),
                     O.table("changedjobs", ("Job ID", "Status", "Changed", "Changed (UTC)"),
                             rows)])
