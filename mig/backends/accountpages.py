"""Accounting pages: ``accounting`` shows the CPU time used per user, VGrid
and resource, and contributed per resource owner, day by day, as a table, an
SVG chart and (through /api/accounting or output_format=json) the same
figures as JSON.  Everyone sees their own figures, the VGrids they are in
and the resources they own; admins see everything."""

import time

from mig.backends import Field, backend
from mig.core.accounting import KINDS
from mig.errors import InvalidArgument
from mig.render import objects as O

TITLES = {"user": "CPU time you used", "vgrid": "CPU time used in your VGrids",
          "resource": "CPU time used on your resources",
          "owner": "CPU time your resources contributed"}
MAX_DAYS = 366


def _visible(ctx, kind):
    """The names of kind the caller may see; None: all (admins)."""
    grid, user = ctx.grid, ctx.user
    if grid.users.is_admin(user):
        return None
    if kind in ("user", "owner"):
        return {user}
    if kind == "vgrid":
        return set(grid.vgrids.user_vgrids(user))
    return {r["NAME"] for r in grid.resources.managed_by(user)}


@backend("accounting", title="Accounting", header="Accounting",
         fields={"kind": Field("word", default=("user",),
                               help="user, vgrid, resource or owner"),
                 "days": Field("number", default=("30",), help="how many days back (1-366)")})
def accounting(ctx, args):
    """CPU time (core hours) per user, VGrid or resource, and contributed per resource owner,
    for the last days, as a table, a chart and JSON."""
    kind, days = args["kind"], int(args["days"])
    if kind not in KINDS:
        raise InvalidArgument("kind: one of %s" % ", ".join(KINDS))
    if not 1 <= days <= MAX_DAYS:
        raise InvalidArgument("days: 1 to %d" % MAX_DAYS)
    now = time.time()
    dates = [time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * n))
             for n in range(days - 1, -1, -1)]
    figures = ctx.grid.accounting.days(dates[0], dates[-1])
    visible = _visible(ctx, kind)
    totals = {}
    for day in dates:
        for name, seconds in figures.get(day, {}).get(kind, {}).items():
            if visible is None or name in visible:
                totals[name] = totals.get(name, 0.0) + seconds
    ranked = sorted(totals, key=lambda n: -totals[n])
    table = O.table("accounting", (kind.title(), "Core hours", "Core seconds"),
                    [(n, "%.2f" % (totals[n] / 3600), int(round(totals[n]))) for n in ranked])
    table["empty"] = "Nothing used in these days."
    chart = {"object_type": "chart", "kind": "line", "title": "%s, core hours per day"
             % TITLES[kind], "labels": [d[5:] for d in dates],
             "series": [{"label": n, "values": [round(figures.get(d, {}).get(kind, {})
                                                      .get(n, 0.0) / 3600, 3) for d in dates]}
                        for n in ranked[:6]]}
    tabs = {"object_type": "tabs", "tabs": [
        ("/cgi-bin/accounting.py?kind=%s&days=%d" % (k, days), k.title(), k == kind)
        for k in KINDS]}
    return O.Result([tabs, O.text("%s in the last %d days (UTC; a run counts when it ends, "
                                  "its wall time times its cores)." % (TITLES[kind], days)),
                     table, chart])
