"""The portal's Dashboard, and the address of any portal page.

Portal pages are backends like any other (so scripts can read them as JSON
too): the Dashboard here, the Jobs list and job page in jobpages.py, Submit
Job in submitpages.py, the listing pages in pages.py; the operations
themselves stay in their own backends."""

import time
import urllib.parse

from mig.backends import backend
from mig.backends.jobs import asctime, live
from mig.core import jobs as J
from mig.core import scheduler
from mig.render import objects as O

PER_PAGE = 50


def page_url(backend_name, /, **query):
    return "/cgi-bin/%s.py" % backend_name + ("?" + urllib.parse.urlencode(query) if query else "")


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
    mine = grid.vgrids.user_vgrids(user)
    units = [u for u in visible_units(ctx) if scheduler.reaches(u, mine)]
    objects.append(O.header("Resources"))
    objects.append(O.text(reach_summary(units, counts, mine)))
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


def visible_units(ctx):
    """The exe units of the resources the caller may see (setvisibility)."""
    grid, levels = ctx.grid, ctx.grid.visibility.levels("resource")
    if not levels:  # all public (the default)
        return grid.registry.all()
    seen = {}
    return [u for u in grid.registry.all()
            if seen.setdefault(u.resource, grid.sees(ctx.user, "resource", u.resource, levels))]


def reach_summary(units, counts, vgrids):
    """What this user can use now: exe units, free slots, own jobs waiting."""
    free = sum(max(0, u.slots - len(u.running)) for u in units if u.online and not u.stopped)
    waiting = sum(counts.get(s, 0) for s in ("QUEUED", "RETRY"))
    return ("Your VGrids (%s) reach %d exe unit%s with %d free slot%s now; %d of your jobs "
            "wait." % (", ".join(vgrids), len(units), "" if len(units) == 1 else "s", free,
                       "" if free == 1 else "s", waiting))


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
