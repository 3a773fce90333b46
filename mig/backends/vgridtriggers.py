"""VGrid trigger backends, with MiG's names and fields: ``addvgridtrigger``,
``rmvgridtrigger`` and ``lsvgridtriggers`` (the rules and the log of what
fired).  The rules are checked in mig/core/triggers.py; the scanner that
fires them is mig/daemon/triggerd.py."""

from mig.backends import Field, backend
from mig.backends.jobs import asctime
from mig.core.triggers import check_rule
from mig.errors import InvalidArgument
from mig.render import objects as O

VGRID = {"vgrid_name": Field("vgrid", required=True, help="the VGrid")}


def _page(ctx, name, message=None):
    grid = ctx.grid
    grid.vgrids.check_visible(name, ctx.user)
    rules = grid.trigger_rules.rules(name)
    manages = grid.vgrids.is_owner(ctx.user, name) or \
        grid.users.is_admin(ctx.user)
    rows = [(r["rule_id"], r["path"], ", ".join(r["changes"]), r["arguments"],
             r["rate_limit"] or "-", "%g s" % r["settle_time"], r["owner"],
             {"post": "rmvgridtrigger", "text": "Remove",
              "fields": {"vgrid_name": name, "rule_id": r["rule_id"]}}
             if manages or r["owner"] == ctx.user else "")
            for r in rules]
    table = O.table("vgridtriggers", ("Rule", "Files", "Changes", "Job template", "Rate limit",
                                      "Settle", "Owner", "Action"), rows)
    table["empty"] = "No triggers."
    fired = O.table("vgridtriggerlog", ("Time (UTC)", "Rule", "File", "Change", "Job",
                                        "Result"),
                    [(asctime(e["time"]), e["rule_id"], e["path"], e["change"],
                      {"text": e["job_id"], "href": "/cgi-bin/jobstatus.py?job_id=%s"
                       % e["job_id"]} if e["job_id"] and e["owner"] == ctx.user
                      else e["job_id"] or "-", e["result"])
                     for e in reversed(grid.trigger_rules.log(name))])
    fired["empty"] = "Nothing fired yet."
    form = {"object_type": "form", "action": "addvgridtrigger", "submit": "Add trigger",
            "fields": [{"name": "vgrid_name", "type": "hidden", "value": name},
                       {"name": "rule_id", "label": "Rule", "help": "a name for the rule"},
                       {"name": "path", "label": "Files",
                        "help": "a pattern below the shared folder, e.g. incoming/*.csv"},
                       {"name": "arguments", "label": "Job template",
                        "help": "an mRSL file in the shared folder; +TRIGGERPATH+ is the "
                                "file's path"},
                       {"name": "rate_limit", "label": "Rate limit", "help": "e.g. 10/m"},
                       {"name": "settle_time", "label": "Settle time",
                        "help": "seconds the file must stay unchanged"}]}
    checks, last = grid.trigger_checks(name)
    watch = O.text("Checked for changes %d times, last at %s UTC (a new rule watches from the "
                   "next check on: files there before it do not fire it)."
                   % (checks, asctime(last) or "-") if checks else
                   "Not checked yet: a new rule watches from the first check on.")
    return O.Result(([message] if message else []) + [
        table, watch, O.header("What fired"), fired, O.header("Add a trigger"), form])


@backend("lsvgridtriggers", title="VGrids", header="VGrid triggers", fields=VGRID)
def lsvgridtriggers(ctx, args):
    """The trigger rules of a VGrid you are in, and the log of what they fired."""
    return _page(ctx, args["vgrid_name"])


@backend("addvgridtrigger", title="VGrids", header="VGrid triggers", state_changing=True,
         fields=dict(VGRID, rule_id=Field("word", required=True, help="the rule's name"),
                     path=Field("path", required=True,
                                help="files below the shared folder (a pattern)"),
                     changes=Field("word", multi=True, help="created and/or modified "
                                                            "(default both)"),
                     action=Field("word", default=("submit",), help="submit (the only one)"),
                     arguments=Field("path", required=True,
                                     help="the job template: an mRSL file in the shared "
                                          "folder"),
                     rate_limit=Field("text", help="at most N jobs per s, m, h or d: N/m"),
                     settle_time=Field("text", help="seconds a file must stay unchanged"),
                     match_files=Field("bool", default=("true",), help="ignored"),
                     match_dirs=Field("bool", default=("false",), help="ignored"),
                     match_recursive=Field("bool", default=("true",), help="ignored"),
                     rank=Field("number", help="ignored")))
def addvgridtrigger(ctx, args):
    """Add a rule that submits a job (as you) from a template in the shared folder when a
    matching file is created or changed there."""
    name = args["vgrid_name"]
    if args["action"] != "submit":
        raise InvalidArgument("action: only submit is supported")
    rule = check_rule(args["rule_id"], args["path"], args["changes"], args["arguments"],
                      args["rate_limit"].strip(), args["settle_time"].strip())
    ctx.grid.trigger_rules.add(name, rule, ctx.user)
    return _page(ctx, name, O.success("Added the trigger %s." % rule["rule_id"]))


@backend("rmvgridtrigger", title="VGrids", header="VGrid triggers", state_changing=True,
         fields=dict(VGRID, rule_id=Field("word", required=True, help="the rule")))
def rmvgridtrigger(ctx, args):
    """Remove a trigger (its owner, or an owner of the VGrid)."""
    name = args["vgrid_name"]
    ctx.grid.trigger_rules.remove(name, args["rule_id"], ctx.user)
    return _page(ctx, name, O.success("Removed the trigger %s." % args["rule_id"]))
