"""People and accounts over HTTPS: asking for an account on the public page
and an admin accepting it; a password reset through a link mailed by a real
SMTP server; disabling, enabling and removing accounts; renewing a
certificate; the directory's opt-in profiles."""

import json
import os
import re
import subprocess
import urllib.parse

from conftest import (exit_code, https_connection, portal_login, post_backend, set_config,
                      wait_for)


def public_form(app, path, fields):
    """GET a public form (its cookie and token), then POST fields with them:
    (status, page text)."""
    conn = https_connection(app)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        page = response.read().decode()
        cookie = response.getheader("Set-Cookie").split(";", 1)[0]
        token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
        conn.request("POST", path.split("?")[0], body=urllib.parse.urlencode(
            dict(fields, _csrf=token)), headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def logs_in(app, user, password):
    conn = https_connection(app)
    try:
        return bool(portal_login(conn, user, password)[2])  # a session cookie
    finally:
        conn.close()


def grid(appliance_factory, **settings):
    app = appliance_factory()
    users = {n: app.add_user(n) for n in ("alice", "bob")}
    users["root"] = json.loads(app.cli("user", "add", "root", "--admin", "--json").stdout)
    set_config(app.state, scheduler_tick="0.5", **settings)
    app.start()
    return app, users


def test_asking_for_an_account_and_an_admin_accepting_it(appliance_factory):
    app, u = grid(appliance_factory)
    status, page = public_form(app, "/signup", {"name": "alice", "email": "a@example.org",
                                                "password": "long enough pw"})
    assert status == 400 and "the user name alice is taken" in page
    status, page = public_form(app, "/signup", {
        "name": "newbie", "full_name": "New Person", "email": "newbie@example.org",
        "organization": "Lab", "comment": "<b>please</b>", "password": "correct horse"})
    assert status == 200 and "Your request for newbie was sent" in page
    assert "<b>please</b>" not in page
    assert "Account request: newbie" in post_backend(app, u["root"], "inbox", [])
    people = json.loads(app.curl(u["root"], "URL/api/people"))
    rows = [o for o in people if o.get("kind") == "accountrequests"][0]["rows"]
    assert [(r[0], r[2], r[4]) for r in rows] == [("newbie", "newbie@example.org",
                                                   "<b>please</b>")]
    request_id = rows[0][7]["fields"]["request_id"]
    assert exit_code(post_backend(app, u["alice"], "acceptaccount",
                                  [("request_id", request_id)])) == 104
    assert exit_code(post_backend(app, u["root"], "acceptaccount",
                                  [("request_id", request_id)])) == 0
    assert logs_in(app, "newbie", "correct horse")
    assert not logs_in(app, "newbie", "wrong password")


def test_password_reset_by_mail(appliance_factory, smtp_server):
    from web.test_notify import received
    port, maildir = smtp_server
    app, u = grid(appliance_factory, smtp_server="127.0.0.1:%d" % port)
    assert exit_code(post_backend(app, u["bob"], "savesettings",
                                  [("email", "bob@example.org")])) == 0
    for name in ("bob", "nobody"):  # the same answer, whether the name exists or not
        status, page = public_form(app, "/pwreset", {"name": name})
        assert status == 200 and "If %s has an account with a saved e-mail address" % name in page
    mail = wait_for(lambda: received(maildir), 30, what="the reset mail")
    assert len(mail) == 1 and mail[0]["To"] == "bob@example.org"
    link = re.search(r"(/pwreset\?token=\S+)", mail[0].get_content()).group(1)
    status, page = public_form(app, link, {"token": link.split("=", 1)[1],
                                           "password": "a brand new one"})
    assert status == 200 and "The password of bob was changed" in page
    assert logs_in(app, "bob", "a brand new one")
    status, page = public_form(app, link, {"token": link.split("=", 1)[1],
                                           "password": "yet another one"})
    assert status == 400 and "not valid" in page  # once only


def test_disable_enable_remove_and_renew(appliance_factory):
    app, u = grid(appliance_factory)
    bob, root = u["bob"], u["root"]

    def works(user):
        reply = subprocess.run(["curl", "-sS", "--cacert", app.ca, "--cert", user["cert"],
                                "--key", user["key"], "-d", "output_format=txt",
                                app.url + "/cgi-bin/ls.py"], capture_output=True, text=True,
                               timeout=60).stdout
        return reply.startswith("Exit code: 0 ")
    assert exit_code(post_backend(app, u["alice"], "disableuser", [("cert_id", "bob")])) == 104
    assert exit_code(post_backend(app, root, "disableuser", [("cert_id", "bob")])) == 0
    assert not works(bob)
    assert exit_code(post_backend(app, root, "enableuser", [("cert_id", "bob")])) == 0
    assert works(bob)
    # renewal: a new key and certificate that work
    before = open(bob["cert"]).read()
    assert exit_code(post_backend(app, bob, "renewcert", [])) == 0
    assert open(bob["cert"]).read() != before and works(bob)
    # removal: not while bob has a job waiting; then his home is kept aside
    post_backend(app, bob, "textarea", [("mrsltextarea_0",
                                         "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n")])
    reply = post_backend(app, root, "removeuser", [("cert_id", "bob")])
    assert exit_code(reply) == 100 and "job(s) waiting or running" in reply
    post_backend(app, bob, "canceljob", [("job_id", "*")])
    # bob's VGrid role goes with him; alice, the only owner of Lab, cannot be removed
    assert exit_code(post_backend(app, u["alice"], "createvgrid", [("vgrid_name", "Lab")])) == 0
    assert exit_code(post_backend(app, u["alice"], "addvgridmember", [
        ("vgrid_name", "Lab"), ("cert_id", "bob")])) == 0
    reply = post_backend(app, root, "removeuser", [("cert_id", "alice")])
    assert exit_code(reply) == 100 and "only owner of the VGrid Lab" in reply
    reply = post_backend(app, root, "removeuser", [("cert_id", "bob")])
    assert exit_code(reply) == 0
    members = post_backend(app, u["alice"], "lsvgridmembers", [("vgrid_name", "Lab")])
    assert members.split("___\n\n", 1)[1].split() == ["Member"]
    assert not works(bob)
    kept = os.listdir(os.path.join(app.state, "removed-users"))
    assert len(kept) == 1 and kept[0].startswith("bob-")


def test_profiles_are_shown_only_when_their_owner_says_so(appliance_factory):
    app, u = grid(appliance_factory)

    def row(viewer, name):
        objects = json.loads(app.curl(viewer, "URL/api/people"))
        return [r for r in [o for o in objects if o.get("kind") == "people"][0]["rows"]
                if r[0] == name][0]
    assert exit_code(post_backend(app, u["bob"], "saveprofile", [
        ("full_name", "Bob B"), ("organization", "Physics"), ("about", "beams")])) == 0
    assert row(u["alice"], "bob")[3:6] == ["", "", ""]
    assert row(u["bob"], "bob")[3:6] == ["Bob B", "Physics", "beams"]
    assert exit_code(post_backend(app, u["bob"], "saveprofile", [
        ("full_name", "Bob B"), ("organization", "Physics"), ("about", "beams"),
        ("profile_visible", "true")])) == 0
    assert row(u["alice"], "bob")[3:6] == ["Bob B", "Physics", "beams"]


def test_the_owners_of_the_signup_vgrid_answer_requests_too(appliance_factory):
    """With signup_vgrid set, that VGrid's owners see and answer account requests;
    the accepted person joins the VGrid."""
    app, u = grid(appliance_factory, signup_vgrid="Newcomers")
    assert exit_code(post_backend(app, u["alice"], "createvgrid",
                                  [("vgrid_name", "Newcomers")])) == 0
    status, _page = public_form(app, "/signup", {"name": "nina", "email": "nina@example.org",
                                                 "password": "long enough pw"})
    assert status == 200
    assert "Account request: nina" in post_backend(app, u["alice"], "inbox", [])
    rows = [o for o in json.loads(app.curl(u["alice"], "URL/api/people"))
            if o.get("kind") == "accountrequests"][0]["rows"]
    request_id = rows[0][7]["fields"]["request_id"]
    assert exit_code(post_backend(app, u["bob"], "acceptaccount",
                                  [("request_id", request_id)])) == 104  # not an owner
    assert exit_code(post_backend(app, u["alice"], "acceptaccount",
                                  [("request_id", request_id)])) == 0
    assert logs_in(app, "nina", "long enough pw")
    members = post_backend(app, u["alice"], "lsvgridmembers", [("vgrid_name", "Newcomers")])
    assert members.split("___\n\n", 1)[1].split() == ["Member", "nina"]
    assert exit_code(post_backend(app, u["alice"], "removeuser", [("cert_id", "bob")])) == 104


def _other_ca(folder, subjects):
    """Another organisation's CA (made with the openssl command, as theirs would
    be) and client certificates it signs: {subject: (cert, key)}."""
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=120)
    ca_key, ca_crt = os.path.join(folder, "other-ca.key"), os.path.join(folder, "other-ca.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
            "-days", "30", "-subj", "/C=DE/O=Other University/CN=Other University CA")
    made = {}
    for n, subject in enumerate(subjects):
        key, csr, crt = (os.path.join(folder, "client%d.%s" % (n, e)) for e in ("key", "csr",
                                                                                "crt"))
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                "-subj", subject)
        openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                "-CAcreateserial", "-out", crt, "-days", "30")
        made[subject] = {"cert": crt, "key": key}
    return ca_crt, made


def test_signing_up_with_a_certificate_of_another_ca(appliance_factory, tmp_path):
    erin_dn = "/C=DE/O=Other University/CN=Erin Example"
    app = appliance_factory()
    users = {n: app.add_user(n) for n in ("alice",)}
    users["root"] = json.loads(app.cli("user", "add", "root", "--admin", "--json").stdout)
    ca_crt, certs = _other_ca(str(tmp_path), [erin_dn, users["alice"]["dn"]])
    set_config(app.state, extra_client_ca=ca_crt)
    app.start()
    erin, spoof = certs[erin_dn], certs[users["alice"]["dn"]]
    # Another CA cannot name a user of ours: alice's DN signed by it is nobody.
    reply = post_backend(app, spoof, "ls", [])
    assert exit_code(reply) == 104 and "is not registered on this grid" in reply, reply
    reply = post_backend(app, erin, "ls", [])
    assert exit_code(reply) == 104 and "ask for an account with it at /signup" in reply, reply

    def signup(who, fields):
        conn = https_connection(app, who)
        try:
            conn.request("GET", "/signup")
            response = conn.getresponse()
            page = response.read().decode()
            cookie = response.getheader("Set-Cookie").split(";", 1)[0]
            token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
            conn.request("POST", "/signup", body=urllib.parse.urlencode(
                dict(fields, _csrf=token)), headers={
                "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
            response = conn.getresponse()
            return page, response.status, response.read().decode()
        finally:
            conn.close()
    form, status, page = signup(erin, {"name": "erin", "email": "erin@example.org",
                                       "comment": "a visiting student"})
    assert "You present the certificate %s (issued by /C=DE/O=Other University/CN=Other " \
           "University CA)" % erin_dn in form
    assert status == 200 and "Your request for erin was sent" in page, page
    # Without a certificate a password is still needed.
    _form, status, page = signup(None, {"name": "frank", "email": "frank@example.org"})
    assert status == 400 and "password: at least 10 characters" in page
    people = json.loads(app.curl(users["root"], "URL/api/people"))
    rows = [o for o in people if o.get("kind") == "accountrequests"][0]["rows"]
    assert [(r[0], r[5]) for r in rows] == [("erin", "%s (issued by /C=DE/O=Other University"
                                                     "/CN=Other University CA)" % erin_dn)]
    assert exit_code(post_backend(app, users["root"], "acceptaccount",
                                  [("request_id", rows[0][7]["fields"]["request_id"])])) == 0
    # erin's own certificate now logs her in, as erin; the spoof still fails.
    assert exit_code(post_backend(app, erin, "touch", [("path", "hello.txt")])) == 0
    assert os.path.isfile(os.path.join(app.state, "home", "erin", "hello.txt"))
    assert exit_code(post_backend(app, spoof, "ls", [])) == 104
    form, status, page = signup(erin, {"name": "erin2", "email": "erin@example.org"})
    assert "You present the certificate" not in form
    assert status == 400 and "password: at least 10 characters" in page
