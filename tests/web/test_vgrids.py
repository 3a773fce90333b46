"""VGrids in a running appliance, over HTTPS with MiG's backend names: create,
nest, owners and members, requests to join, resources accepted by a VGrid,
and jobs with ::VGRID:: that run only where the VGrid reaches (the
scheduler's explanation otherwise)."""

import json
import re

import pytest

from conftest import after_two_passes, exit_code, post_backend, set_config, wait_for


@pytest.fixture
def grid(appliance_factory):
    app = appliance_factory()
    users = {name: app.add_user(name) for name in ("alice", "bob", "carol", "dave")}
    set_config(app.state, local_vgrids="Generic, Lab", scheduler_tick="0.5")
    app.start()
    return app, users


def call(app, user, name, *fields):
    return post_backend(app, user, name, list(fields))


def listed(app, user, name, vgrid):
    """What a ls backend lists, from its txt reply (after the title line)."""
    reply = call(app, user, name, ("vgrid_name", vgrid))
    assert exit_code(reply) == 0, reply
    return reply.split("___\n\n", 1)[1].split()


def submit(app, user, text):
    reply = call(app, user, "textarea", ("mrsltextarea_0", text))
    assert exit_code(reply) == 0, reply
    return re.search(r"^(\S+) \| ", reply, re.M).group(1) if " | " in reply \
        else re.findall(r"\b\d+_\d+_\d+_\d+__\S+", reply)[0]


def verdict(feasible):
    """(verdict, reasons) of the host's exe unit in a jobfeasible txt reply."""
    return re.search(r"^\S+\s+localhost\.0_local\s+(\w+)\s+(.*)$", feasible, re.M).groups()


def status(app, user, job_id):
    return re.search(r"^Status: (\w+)", call(app, user, "jobstatus", ("job_id", job_id)),
                     re.M).group(1)


def test_owners_members_nesting_and_requests(grid):
    app, u = grid
    alice, bob, carol, dave = u["alice"], u["bob"], u["carol"], u["dave"]
    reply = call(app, alice, "createvgrid", ("vgrid_name", "Lab"))
    assert exit_code(reply) == 0 and "Created the VGrid Lab." in reply
    assert exit_code(call(app, bob, "createvgrid", ("vgrid_name", "lab"))) == 100  # taken
    assert "reserved" in call(app, bob, "createvgrid", ("vgrid_name", "Generic"))
    assert exit_code(call(app, alice, "addvgridmember", ("vgrid_name", "Lab"),
                          ("cert_id", bob["dn"]))) == 0  # by certificate DN, as MiG
    # Only an owner of the parent creates a sub-VGrid; its owners are inherited.
    assert exit_code(call(app, bob, "createvgrid", ("vgrid_name", "Lab/Sub"))) == 104
    assert exit_code(call(app, alice, "createvgrid", ("vgrid_name", "Lab/Sub"))) == 0
    assert listed(app, alice, "lsvgridowners", "Lab/Sub") == ["Owner", "alice"]
    assert listed(app, bob, "lsvgridmembers", "Lab/Sub") == ["Member", "bob"]  # inherited

    # carol asks to join the sub-VGrid; alice sees the request and accepts it.
    assert exit_code(call(app, carol, "sendrequestaction", ("request_type", "vgridmember"),
                          ("vgrid_name", "Lab/Sub"), ("request_text", "please"))) == 0
    page = json.loads(app.curl(alice, "URL/cgi-bin/adminvgrid.py?vgrid_name=Lab%2FSub"
                                      "&output_format=json"))
    requests = [o for o in page if o.get("kind") == "vgridrequests"][0]["rows"]
    assert [r[0] for r in requests] == ["carol"] and requests[0][2] == "please"
    request_id = requests[0][4]["fields"]["request_name"]
    assert exit_code(call(app, alice, "addvgridmember", ("vgrid_name", "Lab/Sub"),
                          ("cert_id", "carol"), ("request_name", request_id))) == 0
    assert listed(app, carol, "lsvgridmembers", "Lab/Sub") == ["Member", "bob", "carol"]
    # The owners were told in their inbox (with the message).
    inbox = call(app, alice, "inbox")
    assert "Request to join Lab/Sub" in inbox and "carol asks to be a member of Lab/Sub." in inbox
    page = json.loads(app.curl(alice, "URL/cgi-bin/adminvgrid.py?vgrid_name=Lab%2FSub"
                                      "&output_format=json"))
    assert [o for o in page if o.get("kind") == "vgridrequests"][0]["rows"] == []

    # carol is in Lab/Sub, not in Lab; dave in neither.
    assert exit_code(call(app, carol, "lsvgridmembers", ("vgrid_name", "Lab"))) == 104
    assert exit_code(call(app, dave, "lsvgridowners", ("vgrid_name", "Lab/Sub"))) == 104
    # A member takes only itself out; an inherited member is removed where it is listed.
    assert exit_code(call(app, carol, "rmvgridmember", ("vgrid_name", "Lab/Sub"),
                          ("cert_id", "bob"))) == 104
    reply = call(app, alice, "rmvgridmember", ("vgrid_name", "Lab/Sub"), ("cert_id", "bob"))
    assert exit_code(reply) == 100 and "through Lab" in reply
    assert exit_code(call(app, carol, "rmvgridmember", ("vgrid_name", "Lab/Sub"),
                          ("cert_id", "carol"))) == 0
    assert listed(app, alice, "lsvgridmembers", "Lab/Sub") == ["Member", "bob"]
    # The last owner of a VGrid stays; a VGrid with sub-VGrids is not removed.
    assert "last owner" in call(app, alice, "rmvgridowner", ("vgrid_name", "Lab"),
                                ("cert_id", "alice"))
    assert "sub-VGrids" in call(app, alice, "rmvgrid", ("vgrid_name", "Lab"))
    # vgridman lists the caller's VGrids with the role in each.
    rows = [o for o in json.loads(app.curl(bob, "URL/cgi-bin/vgridman.py?output_format=json"))
            if o.get("kind") == "vgrids"][0]["rows"]
    assert [(r[0] if isinstance(r[0], str) else r[0]["text"], r[1]) for r in rows] == [
        ("Generic", "member"), ("Lab", "member"), ("Lab/Sub", "member")]


def test_a_vgrid_job_runs_only_where_the_vgrid_reaches(grid):
    app, u = grid
    alice, bob, dave = u["alice"], u["bob"], u["dave"]
    call(app, alice, "createvgrid", ("vgrid_name", "Lab"))
    call(app, alice, "addvgridmember", ("vgrid_name", "Lab"), ("cert_id", "bob"))
    call(app, alice, "createvgrid", ("vgrid_name", "Lab/Sub"))
    job = "::EXECUTE::\necho in the lab\n\n::VGRID::\nLab/Sub\n"
    # dave is not in Lab/Sub: refused at once, naming the keyword.
    reply = call(app, dave, "textarea", ("mrsltextarea_0", job))
    assert exit_code(reply) != 0 and "not a member of the VGrid(s) Lab/Sub" in reply
    # The host's resource offers to serve Lab, but Lab has not accepted it yet.
    job_id = submit(app, bob, job)
    assert verdict(after_two_passes(app, bob, job_id)) == (
        "RED", "VGRID: the resource offers to serve Lab, but Lab has not accepted it as a "
        "resource (its owners add it with addvgridres)")
    assert status(app, bob, job_id) == "QUEUED"
    # A resource owner asks; for the appliance host that is an admin, which bob is not.
    assert exit_code(call(app, bob, "sendrequestaction", ("request_type", "vgridresource"),
                          ("vgrid_name", "Lab"),
                          ("unique_resource_name", "localhost.0"))) == 104
    assert exit_code(call(app, alice, "addvgridres", ("vgrid_name", "Lab"),
                          ("unique_resource_name", "localhost.0"))) == 0
    wait_for(lambda: status(app, bob, job_id) == "FINISHED", 60, what="the VGrid job")
    out = app.curl(bob, "URL/cert_redirect/job_output/%s/%s.stdout" % (job_id, job_id))
    assert out == "in the lab\n"
    assert listed(app, bob, "lsvgridres", "Lab/Sub") == ["Resource", "localhost.0"]
    # Taken out again, the next job of the VGrid waits and says why.
    assert exit_code(call(app, alice, "rmvgridres", ("vgrid_name", "Lab"),
                          ("unique_resource_name", "localhost.0"))) == 0
    job_id = submit(app, bob, job)
    assert verdict(after_two_passes(app, bob, job_id))[1].startswith(
        "VGRID: the resource offers to serve Lab, but Lab has not accepted it")
    # bob leaves Lab while his job waits: it never runs in the VGrid he left.
    assert exit_code(call(app, bob, "rmvgridmember", ("vgrid_name", "Lab"),
                          ("cert_id", "bob"))) == 0
    call(app, alice, "addvgridres", ("vgrid_name", "Lab"), ("unique_resource_name", "localhost.0"))
    wait_for(lambda: status(app, bob, job_id) == "EXPIRED", 30, what="the job to expire")
    reply = call(app, bob, "jobstatus", ("job_id", job_id))
    assert "bob is no longer a member of the VGrid Lab/Sub" in reply, reply


def test_the_vgrid_guide_runs(grid, tmp_path):
    """The curl lines of docs/vgrids.md, in order, with the users' own certificates."""
    import os
    import shutil
    import subprocess
    app, u = grid
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "vgrids.md")
    with open(docs, encoding="utf-8") as handle:
        block = re.findall(r"```sh\n(.*?)```", handle.read(), re.S)
    assert len(block) == 1
    shutil.copy(app.ca, tmp_path / "ca.crt")
    for name, user in u.items():
        shutil.copy(user["cert"], tmp_path / ("%s.crt" % name))
        shutil.copy(user["key"], tmp_path / ("%s.key" % name))
    replies = []
    for line in block[0].strip().splitlines():
        result = subprocess.run(["bash", "-c", line.replace("https://localhost:8443", app.url)],
                                cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (line, result.stderr)
        assert exit_code(result.stdout) == 0, (line, result.stdout)
        replies.append(result.stdout)
    assert len(replies) == 6
    assert re.search(r"^carol\s+member\s+I run the analysis\s", replies[4], re.M), replies[4]
    assert replies[5].split("___\n\n", 1)[1].split() == ["Member", "bob"]


def test_each_user_sees_what_their_vgrids_reach(appliance_factory):
    """NorduGrid's per-user view: the Resources page marks the exe units this user's
    VGrids reach, with their free slots; the Dashboard lists only those; the
    monitor filters by VGrid."""
    from conftest import grid_with_vgrid, register_resource, resource_conf, table_rows
    app, u = grid_with_vgrid(appliance_factory, ("alice", "bob", "dave"), {"bob": "Lab"},
                             resource_keepalive="0")
    register_resource(app, resource_conf("127.0.0.1", ["name=exe0", "vgrid=Lab", "slots=3"],
                                         port=9), "alice")

    def resources(user):
        rows, objects = table_rows(app, user, "resources", "resources")
        summary = [o["text"] for o in objects if o.get("object_type") == "text"][0]
        return {"%s_%s" % (r[0], r[1]): r[-1] for r in rows}, summary
    unit = "127.0.0.1.0_exe0"
    seen, summary = wait_for(lambda: (lambda r: unit in r[0] and r)(resources(u["bob"])), 30,
                             what="the resource")
    assert seen[unit] == "no" and unit not in app.curl(u["bob"], "URL/api/dashboard")
    assert exit_code(call(app, u["alice"], "addvgridres", ("vgrid_name", "Lab"),
                          ("unique_resource_name", "127.0.0.1.0"))) == 0
    seen, summary = resources(u["bob"])
    assert seen[unit] == "yes" and seen["localhost.0_local"] == "yes"
    assert summary.startswith("Your VGrids (Generic, Lab) reach 2 exe units with")
    seen, summary = resources(u["dave"])
    assert seen[unit] == "no" and summary.startswith("Your VGrids (Generic) reach 1 exe unit ")
    dashboard = app.curl(u["dave"], "URL/api/dashboard")
    assert "localhost.0_local" in dashboard and unit not in dashboard
    monitor = json.loads(app.curl(u["bob"], "URL/api/monitor?vgrid_name=Lab"))
    rows = [o for o in monitor if o.get("kind") == "monitor"][0]["rows"]
    assert ["%s_%s" % (r[0], r[1]) for r in rows] == [unit]


def test_an_invited_user_accepts_or_declines(grid):
    app, u = grid
    call(app, u["alice"], "createvgrid", ("vgrid_name", "Lab"))
    for who in ("bob", "carol"):
        assert exit_code(call(app, u["alice"], "invitevgridmember", ("vgrid_name", "Lab"),
                              ("cert_id", who))) == 0
    assert "Invitation to Lab" in call(app, u["bob"], "inbox")

    def invitation(user):
        objects = json.loads(app.curl(user, "URL/cgi-bin/vgridman.py?output_format=json"))
        rows = [o for o in objects if o.get("kind") == "vgridinvitations"]
        return rows[0]["rows"][0][3]["fields"]["request_name"] if rows else None
    bob_invite, carol_invite = invitation(u["bob"]), invitation(u["carol"])
    # nobody answers another's invitation
    assert exit_code(call(app, u["carol"], "acceptvgridinvite", ("vgrid_name", "Lab"),
                          ("request_name", bob_invite))) == 100
    assert exit_code(call(app, u["bob"], "acceptvgridinvite", ("vgrid_name", "Lab"),
                          ("request_name", bob_invite))) == 0
    assert exit_code(call(app, u["carol"], "declinevgridinvite", ("vgrid_name", "Lab"),
                          ("request_name", carol_invite))) == 0
    assert listed(app, u["alice"], "lsvgridmembers", "Lab") == ["Member", "bob"]
    assert invitation(u["bob"]) is None and invitation(u["carol"]) is None
    assert "bob joined Lab" in call(app, u["alice"], "inbox")


def test_the_vgrid_monitor_lists_its_jobs(grid):
    app, u = grid
    call(app, u["alice"], "createvgrid", ("vgrid_name", "Lab"))
    call(app, u["alice"], "addvgridmember", ("vgrid_name", "Lab"), ("cert_id", "bob"))
    job_id = submit(app, u["bob"], "::EXECUTE::\ntrue\n\n::VGRID::\nLab\n\n"
                                   "::ARCHITECTURE::\nSPARC\n")
    submit(app, u["bob"], "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n")  # Generic only

    def jobs(user):
        objects = json.loads(app.curl(user, "URL/api/monitor?vgrid_name=Lab"))
        found = [o for o in objects if o.get("kind") == "vgridjobs"]
        return found[0]["rows"] if found else objects
    assert jobs(u["bob"]) == [[job_id, "bob", "queued", "-"]]
    assert jobs(u["alice"]) == [["(a job of bob)", "bob", "queued", "-"]]
    reply = call(app, u["dave"], "monitor", ("vgrid_name", "Lab"))
    assert exit_code(reply) == 104 and job_id not in reply


def test_who_sees_the_lists_and_the_public_page(grid):
    """visible_owners/members/resources (MiG stored them, did not enforce them)
    and public_page, each changed by an owner and tried by a member and an outsider."""
    import subprocess
    app, u = grid
    assert exit_code(call(app, u["alice"], "createvgrid", ("vgrid_name", "Lab"))) == 0
    assert exit_code(call(app, u["alice"], "addvgridmember", ("vgrid_name", "Lab"),
                          ("cert_id", "bob"))) == 0
    assert exit_code(call(app, u["alice"], "editvgridpage", ("vgrid_name", "Lab"),
                          ("page", "public"), ("text", "Welcome to the lab"))) == 0

    def public_page():
        done = subprocess.run(["curl", "-sS", "--cacert", app.ca, "-o", "/dev/null",
                               "-w", "%{http_code}", app.url + "/vgrid/Lab/"],
                              capture_output=True, text=True, timeout=60)
        return done.stdout
    # The defaults: members list, outsiders do not; the public page is public.
    assert listed(app, u["bob"], "lsvgridmembers", "Lab") == ["Member", "bob"]
    assert exit_code(call(app, u["dave"], "lsvgridowners", ("vgrid_name", "Lab"))) == 104
    assert public_page() == "200"
    assert exit_code(call(app, u["alice"], "vgridsettings", ("vgrid_name", "Lab"),
                          ("visible_members", "OWNERS"), ("visible_owners", "EVERYONE"),
                          ("public_page", "MEMBERS"))) == 0
    reply = call(app, u["bob"], "lsvgridmembers", ("vgrid_name", "Lab"))
    assert exit_code(reply) == 104 and "shown to its owners only" in reply, reply
    page = call(app, u["bob"], "adminvgrid", ("vgrid_name", "Lab"))
    members = page.split("___MEMBERS___", 1)[1].split("___RESOURCES___", 1)[0]
    assert members.split() == ["Shown", "to", "the", "owners", "only."], page
    assert listed(app, u["dave"], "lsvgridowners", "Lab") == ["Owner", "alice"]
    assert listed(app, u["alice"], "lsvgridmembers", "Lab") == ["Member", "bob"]
    assert public_page() == "404"
    # The members still read the withdrawn page in the portal.
    assert "Welcome to the lab" in call(app, u["bob"], "vgridpage", ("vgrid_name", "Lab"),
                                        ("page", "public"))
    reply = call(app, u["alice"], "vgridsettings", ("vgrid_name", "Lab"),
                 ("visible_resources", "SOME"))
    assert exit_code(reply) != 0 and "visible_resources is OWNERS, MEMBERS or EVERYONE" \
        in reply, reply
