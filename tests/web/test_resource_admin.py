"""Resource management in a running appliance, over HTTPS: owners edit as text
and as a form, rights, owners, register, stop/start from the portal and the
CLI, and the running grid follows without a restart.  No ssh is needed:
the resources here point at a closed port (the keep-alive is off)."""

import json
import re
import urllib.parse

import pytest

from conftest import (after_two_passes, exit_code, https_connection, portal_login, post_backend, resource_conf,
                      set_config, wait_for)

CONF = resource_conf("127.0.0.1", ["name=exe0", "cputime=600", "slots=2"], ["name=exe1"], port=9,
                     note="the owner's note <script>alert(1)</script>",
                     after=[("CPUCOUNT", "2")])
NAME = "127.0.0.1.0"


@pytest.fixture
def grid(appliance_factory, tmp_path):
    app = appliance_factory()
    alice, bob = app.add_user("alice"), app.add_user("bob")
    set_config(app.state, resource_keepalive="0", scheduler_tick="1.0")
    conf = tmp_path / "res.conf"
    conf.write_text(CONF)
    app.cli("resource", "add", "--conf", str(conf), "--owner", "alice")
    app.start()
    return app, alice, bob


def units(app, user):
    """{unit id: row} of the Resources page (JSON): what the running scheduler knows."""
    objects = json.loads(app.curl(user, "URL/api/resources"))
    table = [o for o in objects if o.get("kind") == "resources"][0]
    return {"%s_%s" % (row[0], row[1]): row for row in table["rows"]}


def monitor_state(app, user, unit_id):
    objects = json.loads(app.curl(user, "URL/api/monitor"))
    rows = [o for o in objects if o.get("kind") == "monitor"][0]["rows"]
    return {"%s_%s" % (r[0], r[1]): r[2] for r in rows}.get(unit_id)


def show(app):
    return json.loads(app.cli("resource", "show", NAME, "--json").stdout)


def test_owners_edit_as_text_and_as_form_and_the_grid_follows(grid):
    app, alice, bob = grid
    assert units(app, alice)[NAME + "_exe0"][3] == 2  # cores
    reply = post_backend(app, alice, "reseditaction", [("unique_resource_name", NAME),
                                                 ("resconfig", CONF.replace("::CPUCOUNT::\n2",
                                                                            "::CPUCOUNT::\n8"))])
    assert exit_code(reply) == 0 and "%s was changed." % NAME in reply
    assert units(app, alice)[NAME + "_exe0"][3] == 8  # no restart, no tick: at once

    reply = app.backend(alice, "resformedit", [("unique_resource_name", NAME),
                                               ("MEMORY", "4096"), ("exe_cputime_1", "900"),
                                               ("exe_name_2", "exe2"), ("exe_slots_2", "3")])
    assert exit_code(reply) == 0, reply
    now = units(app, alice)
    assert now[NAME + "_exe0"][5] == 4096 and now[NAME + "_exe1"][7] == 900
    assert now[NAME + "_exe2"][10] == "0 of 3" and now[NAME + "_exe0"][3] == 8
    assert "::MEMORY::\n4096" in show(app)["text"]

    before = show(app)
    bad = post_backend(app, alice, "reseditaction", [("unique_resource_name", NAME),
                                               ("resconfig", CONF.replace("::SSHPORT::\n9",
                                                                          "::SSHPORT::\nnine"))])
    assert exit_code(bad) == 100 and "line 12, keyword SSHPORT: 'nine' is not a whole number" in bad
    bad = app.backend(alice, "resformedit", [("unique_resource_name", NAME), ("DISK", "lots")])
    assert exit_code(bad) == 100 and "keyword DISK: 'lots' is not a whole number" in bad
    for change, message in ((("127.0.0.1", "127.0.0.2"), "HOSTURL cannot change"),
                            ((CONF[CONF.index("::HOSTKEY::"):CONF.index("::SSHPORT::")], ""),
                             "removes HOSTKEY")):
        bad = post_backend(app, alice, "reseditaction", [("unique_resource_name", NAME),
                                                   ("resconfig", CONF.replace(*change, 1))])
        assert exit_code(bad) == 100 and message in bad, bad
    assert show(app) == before  # nothing was stored


def test_non_owners_are_refused_until_an_owner_adds_them(grid):
    app, alice, bob = grid
    for name, fields in (("resadmin", []), ("stopexe", []), ("addresowner", [("cert_id", "bob")]),
                         ("reseditaction", [("resconfig", CONF)]), ("delres", []),
                         ("resformedit", [("MEMORY", "1")])):
        reply = post_backend(app, bob, name, [("unique_resource_name", NAME)] + fields)
        assert exit_code(reply) == 104 and "only the owners of %s (alice)" % NAME in reply, reply
    reply = app.backend(bob, "resman", [])
    assert exit_code(reply) == 0 and NAME not in reply
    reply = app.backend(alice, "addresowner", [("unique_resource_name", NAME),
                                               ("cert_id", bob["dn"])])  # a DN works too
    assert exit_code(reply) == 0 and "bob is an owner of %s." % NAME in reply
    reply = app.backend(alice, "addresowner", [("unique_resource_name", NAME),
                                               ("cert_id", "nobody")])
    assert exit_code(reply) == 100 and "no such user: nobody" in reply
    reply = app.backend(bob, "resformedit", [("unique_resource_name", NAME), ("CPUCOUNT", "6")])
    assert exit_code(reply) == 0 and units(app, bob)[NAME + "_exe0"][3] == 6
    assert NAME in app.backend(bob, "resman", [])
    reply = app.backend(bob, "rmresowner", [("unique_resource_name", NAME), ("cert_id", "alice")])
    assert exit_code(reply) == 0 and show(app)["owners"] == ["bob"]
    reply = app.backend(bob, "rmresowner", [("unique_resource_name", NAME), ("cert_id", "bob")])
    assert exit_code(reply) == 100 and "bob is the last owner" in reply


def test_register_and_remove_while_the_grid_runs(grid):
    app, alice, _bob = grid
    admin = json.load(open("%s/admin-credentials.json" % app.state))
    second = CONF  # the same host again: the next free number
    reply = post_backend(app, alice, "reseditaction", [("resconfig", second)])
    assert exit_code(reply) == 104 and "only admins register resources" in reply
    reply = post_backend(app, admin, "reseditaction", [("resconfig", second), ("owner", "alice")])
    assert exit_code(reply) == 0 and "Registered 127.0.0.1.1." in reply
    assert "ssh-ed25519 " in reply  # the grid's key, for the owner to authorize
    assert {NAME + "_exe0", "127.0.0.1.1_exe0"} <= set(units(app, alice))
    reply = app.backend(alice, "delres", [("unique_resource_name", "127.0.0.1.1")])
    assert exit_code(reply) == 0 and "127.0.0.1.1 was removed." in reply
    assert "127.0.0.1.1_exe0" not in units(app, alice)
    assert json.loads(app.cli("resource", "list", "--json").stdout)[0]["name"] == NAME


def test_stopped_units_get_no_jobs_and_the_cli_acts_within_a_tick(grid):
    app, alice, _bob = grid
    reply = app.backend(alice, "stopexe", [("unique_resource_name", NAME),
                                           ("exe_name", "exe0")])
    assert exit_code(reply) == 0 and "Stopped %s_exe0" % NAME in reply
    assert monitor_state(app, alice, NAME + "_exe0") == "offline: stopped by owner"
    assert monitor_state(app, alice, NAME + "_exe1") == "online"
    reply = app.backend(alice, "textarea", [("mrsltextarea_0", "::EXECUTE::\ntrue\n\n"
                                             "::RESOURCE::\n%s_exe0\n" % NAME)])
    job = re.search(r"^textarea\s+1\s+(\S+)", reply, re.M).group(1)
    feasible = after_two_passes(app, alice, job)
    assert "Status: QUEUED" in app.backend(alice, "jobstatus", [("job_id", job)])
    assert re.search(r"\s%s_exe0\s+ORANGE\s+fits, but the resource is offline: stopped by owner"
                     % re.escape(NAME), feasible), feasible
    app.backend(alice, "jobaction", [("job_id", job)],
                raw_prefix="_=certauth;output_format=txt&action=cancel")

    # the CLI writes the records only; the running grid follows within a tick (1 s here)
    started = app.cli("resource", "start", NAME, "--json")
    assert json.loads(started.stdout)["stopped"] == []
    wait_for(lambda: monitor_state(app, alice, NAME + "_exe0") == "online", 10,
             what="the CLI start to reach the running grid")
    stopped = app.cli("resource", "stop", NAME)
    assert "jobs running there run to their end" in stopped.stdout
    wait_for(lambda: {monitor_state(app, alice, NAME + u) for u in ("_exe0", "_exe1")} ==
             {"offline: stopped by owner"}, 10, what="the CLI stop to reach the running grid")
    for args, message in ((("start", "no.such.0"), "no such resource: no.such.0"),
                          (("stop", NAME, "exe9"), "no exe unit exe9"),
                          (("owner", "add", NAME, "nobody"), "no such user: nobody")):
        result = app.cli("resource", *args, check=False)
        assert result.returncode == 3 and message in result.stderr, result.stderr


def test_browser_forms_carry_csrf_and_the_text_is_escaped(grid):
    app, _alice, _bob = grid
    app.cli("user", "passwd", "alice", "--password", "first-password")
    conn = https_connection(app)
    browser = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Mozilla/5.0"}
    _resp, _body, session = portal_login(conn, "alice", "first-password")
    conn.request("GET", "/cgi-bin/resources.py", headers={"Cookie": session})
    assert "/cgi-bin/resman.py" in conn.getresponse().read().decode()
    conn.request("GET", "/cgi-bin/resadmin.py?unique_resource_name=%s" % NAME,
                 headers={"Cookie": session})
    page = conn.getresponse().read().decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert 'action="/cgi-bin/reseditaction.py"' in page and 'name="resconfig"' in page
    assert 'name="HOSTURL" value="127.0.0.1" readonly' in page and 'name="exe_cputime_0"' in page
    token = page.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
    fields = {"unique_resource_name": NAME, "exe_name": "exe1"}
    headers = dict(browser, Cookie=session)
    conn.request("POST", "/cgi-bin/stopexe.py", body=urllib.parse.urlencode(fields),
                 headers=headers)
    refused = conn.getresponse().read().decode()
    assert "CSRF" in refused and show(app)["stopped"] == []
    conn.request("POST", "/cgi-bin/stopexe.py",
                 body=urllib.parse.urlencode(dict(fields, _csrf=token)), headers=headers)
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 303  # Post/Redirect/Get: the result is a page of its own
    conn.request("GET", reply.getheader("Location"), headers=headers)
    assert "Stopped %s_exe1" % NAME in conn.getresponse().read().decode()
    assert show(app)["stopped"] == ["exe1"]
