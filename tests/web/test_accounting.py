"""Accounting in a running appliance: the CPU time of finished runs per user,
VGrid, resource and contributing owner, as JSON and as a page with an SVG
chart; each user sees only their share; the figures outlive a restart."""

import json
import re

from conftest import exit_code, grid_with_vgrid, post_backend, wait_for

JOB = "::EXECUTE::\nsleep 1\n\n::CPUCOUNT::\n2\n\n::VGRID::\n%s\n"


def figures(app, user, kind):
    objects = json.loads(app.curl(user, "URL/api/accounting?kind=%s&days=2" % kind))
    rows = [o for o in objects if o.get("kind") == "accounting"][0]["rows"]
    return {row[0]: row[2] for row in rows}


def run(app, user, vgrid):
    reply = post_backend(app, user, "textarea", [("mrsltextarea_0", JOB % vgrid)])
    assert exit_code(reply) == 0, reply
    job_id = re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]
    wait_for(lambda: "Status: FINISHED" in post_backend(app, user, "jobstatus",
                                                        [("job_id", job_id)]), 60,
             what="the job")


def test_cpu_time_per_user_vgrid_resource_and_owner(appliance_factory):
    app, u = grid_with_vgrid(appliance_factory, ("alice", "bob", "carol"), {"bob": "Lab"},
                             local_vgrids="Generic, Lab", scheduler_tick="0.5")
    root = json.loads(app.cli("user", "add", "root", "--admin", "--json").stdout)
    assert exit_code(post_backend(app, u["alice"], "addvgridres", [
        ("vgrid_name", "Lab"), ("unique_resource_name", "localhost.0")])) == 0
    run(app, u["bob"], "Lab")
    run(app, u["carol"], "Generic")
    mine = figures(app, u["bob"], "user")
    assert list(mine) == ["bob"] and 2 <= mine["bob"] < 20  # 1 s x 2 cores
    everyone = figures(app, root, "user")
    assert sorted(everyone) == ["bob", "carol"]
    assert sorted(figures(app, u["bob"], "vgrid")) == ["Generic", "Lab"]
    assert list(figures(app, u["carol"], "vgrid")) == ["Generic"]  # not in Lab
    assert figures(app, u["bob"], "resource") == {}  # bob owns no resource
    used = figures(app, root, "resource")["localhost.0"]
    assert used == everyone["bob"] + everyone["carol"]
    assert figures(app, root, "owner") == {"admin": used, "root": used}  # the host: admins'
    page = app.curl(root, "URL/cgi-bin/accounting.py?kind=user&days=2")
    assert '<svg class="chart"' in page and "CPU time you used, core hours per day" in page
    # Written when the appliance stops, read back after the restart.
    app.stop()
    app.start()
    assert figures(app, root, "user") == everyone
    reply = post_backend(app, u["bob"], "accounting", [("kind", "money")])
    assert exit_code(reply) == 102 and "kind: one of user, vgrid, resource, owner" in reply
