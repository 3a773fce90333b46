"""The authorization matrix, generated from the route table: every backend that
touches a job, a file, a VGrid, a forum post, a wiki page, a repository, a
trigger, a page or a runtime environment is tried by the owner of the VGrid
Lab/Sub (alice, who owns its parent Lab), a member (bob, of Lab/Sub), a member
of the parent (carol, of Lab), an outsider (dave) and an anonymous client;
each must get exactly what its role allows: an allowed call succeeds (and
shows the object's secret, for reads), a refused one fails and shows none of
it.  Every backend the appliance has must be in MATRIX or in OWN (touches only
the caller's own data or the grid's public facts), so a new backend cannot
slip through unclassified; and every backend refuses the anonymous client."""

import json
import re
import subprocess
import urllib.parse

import pytest

from conftest import exit_code, https_connection, post_backend, require_tool, set_config

ROLES = ("owner", "member", "parent", "outsider", "anonymous")
VG = "Lab/Sub"
MEMBERS = {"owner", "member", "parent"}
OWNER = {"owner"}
NOBODY = set()


def vg(**more):
    return lambda role, o: [("vgrid_name", VG)] + list(more.items())


def per_role(builder):
    return lambda role, o: builder(role, o)


# backend -> (fields(role, objects), who may, the secret a read shows, or None)
MATRIX = {
    # VGrid: its lists and page
    "adminvgrid": (vg(), MEMBERS, "gina"),
    "lsvgridowners": (vg(), MEMBERS, "henry"),
    "lsvgridmembers": (vg(), MEMBERS, "gina"),
    "lsvgridres": (vg(), MEMBERS, "localhost.0"),
    "lsvgridtriggers": (vg(), MEMBERS, "bobrule"),
    "vgridpage": (vg(page="private"), MEMBERS, "SECRET-PAGE"),
    "showvgridprivatefile": (vg(), MEMBERS, "SECRET-PAGE"),
    "vgridwiki": (vg(), MEMBERS, "SECRET-WIKI"),
    "vgridforum": (vg(), MEMBERS, "SECRET-THREAD"),
    "editvgridwiki": (per_role(lambda r, o: [("vgrid_name", VG), ("page", "P-" + r),
                                             ("text", "by " + r)]), MEMBERS, None),
    "vgridforumaction": (per_role(lambda r, o: [("vgrid_name", VG), ("action", "post"),
                                                ("msg_subject", "s-" + r),
                                                ("msg_body", "b")]), MEMBERS, None),
    "addvgridtrigger": (per_role(lambda r, o: [("vgrid_name", VG), ("rule_id", "r-" + r),
                                               ("path", "*.x"), ("arguments", "t.mRSL")]),
                        MEMBERS, None),
    "rmvgridtrigger": (per_role(lambda r, o: [("vgrid_name", VG), ("rule_id", "bobrule2"
                                                                   if r == "owner" else
                                                                   "bobrule")]),
                       {"owner", "member"}, None),
    "editvgridpage": (vg(page="public", text="new"), OWNER, None),
    "vgridsettings": (vg(description="d"), OWNER, None),
    "addvgridmember": (vg(cert_id="erin"), OWNER, None),
    "addvgridowner": (vg(cert_id="frank"), OWNER, None),
    "invitevgridmember": (vg(cert_id="ivan"), OWNER, None),
    # only the invited user answers an invitation (erin is invited below)
    "acceptvgridinvite": (per_role(lambda r, o: [("vgrid_name", VG),
                                                 ("request_name", o["invite"])]),
                          NOBODY, None),
    "declinevgridinvite": (per_role(lambda r, o: [("vgrid_name", VG),
                                                  ("request_name", o["invite"])]),
                           NOBODY, None),
    "addvgridres": (vg(unique_resource_name="localhost.0"),  # already in: 100 for the owner
                    NOBODY, None),
    "rmvgridmember": (vg(cert_id="gina"), OWNER, None),
    "rmvgridowner": (vg(cert_id="henry"), OWNER, None),
    "rejectvgridreq": (per_role(lambda r, o: [("vgrid_name", VG),
                                              ("request_name", o["request"])]), OWNER, None),
    "createvgrid": (per_role(lambda r, o: [("vgrid_name", VG + "/New-" + r)]), OWNER, None),
    "rmvgrid": (per_role(lambda r, o: [("vgrid_name", VG + "/Tmp")]), OWNER, None),
    "rmvgridres": (vg(unique_resource_name="localhost.0"), OWNER, None),
    # bob's job
    "jobstatus": (per_role(lambda r, o: [("job_id", o["job"])]), {"member"}, "SECRET-JOB"),
    "jobview": (per_role(lambda r, o: [("job_id", o["job"])]), {"member"}, "SECRET-JOB"),
    "mrslview": (per_role(lambda r, o: [("job_id", o["job"])]), {"member"}, "SECRET-JOB"),
    "jobfeasible": (per_role(lambda r, o: [("job_id", o["job"])]), {"member"}, "SPARC"),
    "jobaction": (per_role(lambda r, o: [("job_id", o["job"]), ("action", "freeze")]),
                  {"member"}, None),
    "resubmit": (per_role(lambda r, o: [("job_id", o["job"])]), {"member"}, None),
    "canceljob": (per_role(lambda r, o: [("job_id", o["job"])]), {"member"}, None),
    # a file in the VGrid's shared folder, and one in bob's own home
    "cat": (per_role(lambda r, o: [("path", "Lab/Sub/shared.txt")]), MEMBERS, "SECRET-FILE"),
    "head": (per_role(lambda r, o: [("path", "Lab/Sub/shared.txt")]), MEMBERS, "SECRET-FILE"),
    "tail": (per_role(lambda r, o: [("path", "Lab/Sub/shared.txt")]), MEMBERS, "SECRET-FILE"),
    "grep": (per_role(lambda r, o: [("path", "Lab/Sub/shared.txt"), ("pattern", "SECRET")]),
             MEMBERS, "SECRET-FILE"),
    "ls": (per_role(lambda r, o: [("path", "Lab/Sub")]), MEMBERS, "shared.txt"),
    "touch": (per_role(lambda r, o: [("path", "Lab/Sub/t-" + r)]), MEMBERS, None),
    "mkdir": (per_role(lambda r, o: [("path", "Lab/Sub/d-" + r)]), MEMBERS, None),
    # a runtime environment alice created
    "showre": (per_role(lambda r, o: [("re_name", "MATRIXRE")]),
               {"owner", "member", "parent", "outsider"}, "matrix test"),
    "deletere": (per_role(lambda r, o: [("re_name", "MATRIXRE")]), OWNER, None),
}

# Backends that act only on the caller's own data (home, jobs, settings,
# messages) or show what the whole grid may see; their rights are tested in
# their own tests.  Each still refuses the anonymous client (below).
OWN = {
    "accounting", "addresowner", "changepassword", "chksum", "cp", "createre", "dashboard",
    "delmsg", "delres", "docs", "download", "downloads", "editfile", "editor", "expand",
    "fileaction", "fileman", "filemove", "hostruntimeenvs", "inbox", "jobchanges", "jobman",
    "jobmanaction", "jobtail", "liveio", "monitor", "mqueue", "mv", "newtoken", "pack", "people",
    "rangefileaccess", "redb", "resadmin", "resclean", "reseditaction", "resformedit", "resman",
    "resources", "resstatus", "revoketoken", "rm", "rmdir", "rmresowner", "runtimeenvs",
    "samplejob", "savesettings", "scripts", "scriptsdownload", "sendmsg", "sendrequestaction",
    "sethostruntimeenvs", "settings", "sharelink", "shell", "shellcmd", "startexe", "statpath",
    "stopexe", "submit", "submitfields", "submitjob", "submitmrsltext", "sweep", "sweepaction",
    "sweepstatus", "textarea", "truncate", "unpack", "unzip", "upload", "uploadchunked",
    "vgridman", "vgrids", "viewfile", "wc", "zip",
    # accounts: the caller's own profile and certificate, or admins only (test_accounts.py)
    "saveprofile", "renewcert", "acceptaccount", "rejectaccount", "disableuser", "enableuser",
    "removeuser",
    # a resource's owners test a runtime environment there (test_runtimeenvs.py)
    "testresupport",
    # who sees a job, runtime environment, resource or folder: its owners set it
    # (test_visibility.py)
    "setvisibility", "sharedfolders",
}
# Run last, in this order: they remove what the others use.
LAST = ("rejectvgridreq", "rmvgridmember", "rmvgridowner", "rmvgridres", "rmvgrid",
        "canceljob", "deletere")


def call_anonymous(app, name, fields):
    conn = https_connection(app)
    try:
        conn.request("POST", "/cgi-bin/%s.py" % name,
                     body=urllib.parse.urlencode(list(fields) + [("output_format", "txt")]),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The grid, its users and the objects the matrix tries (made through the backends)."""
    import sys
    from conftest import Appliance, ENTRY
    state = str(tmp_path_factory.mktemp("matrix") / "state")
    app = Appliance([sys.executable, ENTRY], state)
    users = {name: app.add_user(name)
             for name in ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "henry",
                          "henry2", "ivan")}
    set_config(app.state, resource_keepalive="0", local_vgrids="Generic, Lab")
    app.start()
    try:
        a, b = users["alice"], users["bob"]

        def ok(user, name, *fields):
            reply = post_backend(app, user, name, list(fields))
            assert exit_code(reply) == 0, (name, reply)
            return reply
        ok(a, "createvgrid", ("vgrid_name", "Lab"))
        ok(a, "createvgrid", ("vgrid_name", VG))
        ok(a, "createvgrid", ("vgrid_name", VG + "/Tmp"))
        ok(a, "addvgridmember", ("vgrid_name", "Lab"), ("cert_id", "carol"))
        for who in ("bob", "gina"):
            ok(a, "addvgridmember", ("vgrid_name", VG), ("cert_id", who))
        ok(a, "addvgridowner", ("vgrid_name", VG), ("cert_id", "henry"))
        ok(a, "addvgridres", ("vgrid_name", VG), ("unique_resource_name", "localhost.0"))
        ok(a, "editvgridpage", ("vgrid_name", VG), ("page", "private"), ("text", "SECRET-PAGE"))
        ok(b, "editvgridwiki", ("vgrid_name", VG), ("page", "Home"), ("text", "SECRET-WIKI"))
        ok(b, "vgridforumaction", ("vgrid_name", VG), ("action", "post"),
           ("msg_subject", "SECRET-THREAD"), ("msg_body", "x"))
        put = app.curl(b, "-X", "PUT", "--data-binary", "::EXECUTE::\ntrue\n",
                       "URL/cert_redirect/Lab/Sub/t.mRSL")  # the triggers' job template
        assert put.startswith("0"), put
        for rule in ("bobrule", "bobrule2"):
            ok(b, "addvgridtrigger", ("vgrid_name", VG), ("rule_id", rule), ("path", "*.z"),
               ("arguments", "t.mRSL"))
        put = app.curl(b, "-X", "PUT", "--data-binary", "SECRET-FILE\n",
                       "URL/cert_redirect/Lab/Sub/shared.txt")
        assert put.startswith("0"), put
        reply = ok(b, "textarea", ("mrsltextarea_0", "::EXECUTE::\ntrue\n\n::JOBNAME::\n"
                                   "SECRET-JOB\n\n::ARCHITECTURE::\nSPARC\n"))
        job = re.findall(r"\b\d+_\d+_\d+_\d+__\S+\.0\b", reply)[0]
        ok(a, "createre", ("re_name", "MATRIXRE"), ("redescription", "matrix test"))
        ok(users["dave"], "sendrequestaction", ("request_type", "vgridmember"),
           ("vgrid_name", VG))
        page = json.loads(app.curl(a, "URL/cgi-bin/adminvgrid.py?vgrid_name=Lab%2FSub"
                                      "&output_format=json"))
        request = [o for o in page if o.get("kind") == "vgridrequests"][0]["rows"][0]
        ok(a, "invitevgridmember", ("vgrid_name", VG), ("cert_id", "henry2"))
        invite = [r for r in json.loads(app.curl(users["henry2"], "URL/cgi-bin/vgridman.py"
                                                                  "?output_format=json"))
                  if r.get("kind") == "vgridinvitations"][0]["rows"][0]
        objects = {"job": job, "request": request[4]["fields"]["request_name"],
                   "invite": invite[3]["fields"]["request_name"]}
        yield app, users, objects
    finally:
        app.stop()


def test_every_backend_is_classified():
    from mig.backends.catalog import load_all
    names = set(load_all())
    assert sorted(names - set(MATRIX) - OWN) == []  # a new backend needs its row
    assert sorted((set(MATRIX) | OWN) - names) == []
    assert not set(MATRIX) & OWN


def test_every_backend_refuses_the_anonymous_client(world):
    from mig.backends.catalog import load_all
    app, _users, _objects = world
    let_in = []
    for name in sorted(load_all()):
        status, body = call_anonymous(app, name, [])
        if status != 401 and not (body.startswith("Exit code: 104 ") or status == 403):
            let_in.append((name, status, body[:80]))
    assert let_in == []


def _order():
    return [n for n in MATRIX if n not in LAST] + list(LAST)


@pytest.mark.parametrize("name", _order())
def test_matrix(world, name):
    app, users, objects = world
    fields_of, allowed, secret = MATRIX[name]
    by_role = {"owner": users["alice"], "member": users["bob"], "parent": users["carol"],
               "outsider": users["dave"]}
    wrong = []
    # refused roles first: an allowed call may change what the others would see
    for role in sorted(ROLES, key=lambda r: r in allowed):
        fields = fields_of(role, objects)
        if role == "anonymous":
            status, reply = call_anonymous(app, name, fields)
            code = 104 if status == 401 else exit_code(reply)
        else:
            reply = post_backend(app, by_role[role], name, fields)
            code = exit_code(reply)
        shows = secret is not None and secret in reply.split("\n", 2)[-1]
        if role in allowed:
            if code != 0 or (secret is not None and not shows):
                wrong.append((role, "refused", code, reply[-300:]))
        elif code == 0 and secret is None or shows:
            wrong.append((role, "allowed", code, reply[-300:]))
    assert wrong == [], (name, wrong)


def test_repository_and_public_page(world):
    """The two objects outside the backends: the git repository and the public page."""
    require_tool("/usr/lib/git-core/git-http-backend", "apt-get install git")
    app, users, _objects = world
    path = "/vgridgit/Lab%2FSub.git/info/refs?service=git-upload-pack"

    def status(user):
        command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", app.ca]
        if user is not None:
            command += ["--cert", user["cert"], "--key", user["key"]]
        return subprocess.run(command + [app.url + path], capture_output=True, text=True,
                              timeout=60).stdout
    got = {role: status(users[name] if name else None) for role, name in (
        ("owner", "alice"), ("member", "bob"), ("parent", "carol"), ("outsider", "dave"),
        ("anonymous", None))}
    assert got == {"owner": "200", "member": "200", "parent": "200", "outsider": "403",
                   "anonymous": "401"}
    public = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             "--cacert", app.ca, app.url + "/vgrid/Lab/Sub/"],
                            capture_output=True, text=True, timeout=60).stdout
    assert public == "200"
