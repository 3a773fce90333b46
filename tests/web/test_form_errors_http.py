"""Errors for people (issue 12, point 2): a refused form comes back with what
was typed, every problem next to its field and summed up on top, in words
(no exit codes, no internal field names); scripts keep MiG's exit codes and
wording.  Against a real appliance over HTTPS, as a browser session and as
a script with a client certificate."""

import json
import re
import urllib.parse
from html.parser import HTMLParser

import pytest

from conftest import exit_code, https_connection, portal_login
from mig.core import keywords

BROWSER = "Mozilla/5.0 test"
SCRIPT = "curl/8"
VOID = {"input", "br", "meta", "link", "img", "hr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, attrs, parent, [], ""

    def all_text(self):
        return self.text + "".join(c.all_text() for c in self.children)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def next_sibling(self):
        siblings = self.parent.children
        index = siblings.index(self)
        return siblings[index + 1] if index + 1 < len(siblings) else None


class Tree(HTMLParser):
    """Just enough of a DOM: elements, their attributes, text and siblings."""

    def __init__(self, page):
        super().__init__()
        self.root = self.current = Node("root", {}, None)
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag):
        node = self.current
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text += data

    def by_id(self, ident):
        found = [n for n in self.root.walk() if n.attrs.get("id") == ident]
        assert len(found) == 1, (ident, len(found))
        return found[0]

    def select(self, tag, **attrs):
        return [n for n in self.root.walk() if n.tag == tag and all(
            n.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def visible_text(self):
        return " ".join(n.text for n in self.root.walk()
                        if n.tag not in ("script", "style", "title", "textarea", "option"))


@pytest.fixture
def session(portal):
    conn = https_connection(portal)
    cookie = portal_login(conn, "alice", "first-password")[2]
    assert cookie
    yield conn, cookie
    conn.close()


@pytest.fixture
def script(appliance_factory):
    app = appliance_factory()
    alice = app.add_user("alice")
    app.start()
    conn = https_connection(app, alice)
    yield conn
    conn.close()


def get(conn, path, cookie, referer=None):
    headers = {"User-Agent": BROWSER, "Cookie": cookie}
    if referer:
        headers["Referer"] = referer
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read().decode("utf-8", "replace"), resp.getheader("Location")


def browser_post(conn, cookie, name, fields, form_page="submitjob.py"):
    """Post a form as the browser does (token from the form's page, Referer),
    follow the redirect to the result page, and parse it."""
    _status, page, _loc = get(conn, "/cgi-bin/%s" % form_page, cookie)
    token = page.split('name="_csrf" value="', 1)[1].split('"', 1)[0]
    body = urllib.parse.urlencode(list(fields) + [("_csrf", token)])
    conn.request("POST", "/cgi-bin/%s.py" % name, body=body, headers={
        "User-Agent": BROWSER, "Cookie": cookie,
        "Referer": "https://%s:%d/cgi-bin/%s" % (conn.host, conn.port, form_page),
        "Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 303, resp.status
    status, page, _loc = get(conn, resp.getheader("Location"), cookie)
    assert status == 200
    return page, Tree(page)


def script_post(conn, name, fields, fmt="txt"):
    body = urllib.parse.urlencode(list(fields) + [("output_format", fmt)])
    conn.request("POST", "/cgi-bin/%s.py" % name, body=body, headers={
        "User-Agent": SCRIPT, "Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    text = resp.read().decode("utf-8", "replace")
    assert resp.status == 200, text
    return json.loads(text) if fmt == "json" else text


def assert_for_people(tree):
    """No exit code, MiG description or internal field name in what a person reads."""
    text = tree.visible_text()
    for internal in ("exit code", "Exit code", "Client error", "Invalid argument",
                     "mrsltextarea_0", "missing required field"):
        assert internal not in text, (internal, text)


BROKEN = [("EXECUTE", "echo kept"), ("CPUTIME", "lots"), ("MEMORY", "12x"),
          ("JOBNAME", "two words"), ("INPUTFILES", "../secret")]


def test_every_problem_of_the_fields_form_is_marked_at_once(session):
    conn, cookie = session
    page, tree = browser_post(conn, cookie, "submitfields", BROKEN)
    summary = tree.by_id("error-summary")
    assert summary.children[0].all_text() == "The job was not submitted"
    links = {a.attrs["href"]: a.all_text() for a in summary.walk() if a.tag == "a"}
    assert set(links) == {"#f-CPUTIME", "#f-MEMORY", "#f-JOBNAME", "#f-INPUTFILES"}
    for name, wrong in BROKEN[1:]:
        control = tree.by_id("f-%s" % name)
        error = control.next_sibling()  # the problem is right after its field
        assert error.attrs == {"class": "field-error", "id": "e-%s" % name}
        assert control.attrs["aria-invalid"] == "true"
        assert "line" not in error.all_text()  # the user wrote fields, not mRSL lines
        kept = control.all_text() if control.tag == "textarea" else control.attrs["value"]
        assert kept == wrong  # what was typed is kept
    assert tree.by_id("e-CPUTIME").all_text() == "invalid value 'lots' (allowed: digits only)"
    assert "outside the home" in tree.by_id("e-INPUTFILES").all_text()
    assert tree.by_id("f-EXECUTE").all_text() == "echo kept"
    assert not tree.select("div", id="e-EXECUTE") and not tree.select("p", class_="msg error failed")
    assert_for_people(tree)


def test_the_fields_form_puts_the_essentials_first_and_offers_the_grids_choices(session):
    conn, cookie = session
    _status, page, _loc = get(conn, "/cgi-bin/submitjob.py", cookie)
    tree = Tree(page)
    form = tree.select("form", action="/cgi-bin/submitfields.py")[0]
    details = [n for n in form.children if n.tag == "details"]
    assert len(details) == 1 and "open" not in details[0].attrs
    folded = set(details[0].walk())
    essentials = [n.attrs["name"] for n in form.walk() if n.tag in ("textarea", "input")
                  and n.attrs.get("type") != "hidden" and n not in folded]
    assert essentials == ["EXECUTE", "INPUTFILES", "OUTPUTFILES", "CPUTIME", "MEMORY", "JOBNAME"]
    assert tree.by_id("f-CPUTIME").attrs["placeholder"] == "600"  # the default shown
    assert tree.by_id("f-MEMORY").attrs["placeholder"] == "64"
    vgrids = [n.attrs["value"] for n in tree.by_id("f-VGRID").walk() if n.tag == "input"]
    assert vgrids == ["Generic"]
    archs = [n.attrs["value"] for n in tree.by_id("f-ARCHITECTURE").walk() if n.tag == "option"]
    assert archs[0] == "" and len(archs) == 2 and archs[1] in keywords.ARCHITECTURES
    assert tree.by_id("f-RUNTIMEENVIRONMENT").all_text().strip().endswith(
        "none offered by this grid's resources yet")


def test_a_kept_advanced_value_opens_the_folded_part(session):
    conn, cookie = session
    _page, tree = browser_post(conn, cookie, "submitfields",
                               [("EXECUTE", "true"), ("NODECOUNT", "0"), ("VGRID", "Generic")])
    details = tree.select("details", **{"class": "advanced"})[0]
    assert "open" in details.attrs
    assert tree.by_id("e-NODECOUNT").all_text() == "must be at least 1"
    checked = [n.attrs["value"] for n in tree.by_id("f-VGRID").walk()
               if n.tag == "input" and "checked" in n.attrs]
    assert checked == ["Generic"]


def test_scripts_posting_every_keyword_still_submit_and_keep_exit_codes(script):
    fields = [(kw.name, "") for kw in keywords.KEYWORDS]
    values = dict(fields, EXECUTE="echo by fields\n\necho after a blank line", CPUTIME="60",
                  VGRID="Generic", JOBTYPE="batch", SANDBOX="False", MAXPRICE="0")
    reply = script_post(script, "submitfields", values.items())
    assert exit_code(reply) == 0 and "submitted." in reply
    reply = script_post(script, "submitfields", dict(values, CPUTIME="lots", MEMORY="x").items())
    assert exit_code(reply) == 100
    assert reply.splitlines()[0].startswith("Exit code: 100 Description Client error")
    assert "** keyword CPUTIME: invalid value 'lots' (allowed: digits only) **" in reply
    assert "** keyword MEMORY: invalid value 'x' (allowed: digits only) **" in reply
    objects = script_post(script, "submitfields", dict(values, CPUTIME="lots").items(), "json")
    errors = [o["text"] for o in objects if o["object_type"] == "error_text"]
    assert errors == ["keyword CPUTIME: invalid value 'lots' (allowed: digits only)"]


def test_empty_job_text_shows_the_text_form_again(session, script):
    conn, cookie = session
    _page, tree = browser_post(conn, cookie, "submitmrsltext", [("save_as_default", "on")],
                               "submitjob.py?style=textarea")
    error = tree.by_id("f-mrsltextarea_0").next_sibling()
    assert error.attrs.get("id") == "e-mrsltextarea_0"
    assert error.all_text().startswith("The job description is empty")
    assert "checked" in tree.by_id("f-save_as_default").attrs  # the tick is kept
    assert tree.by_id("error-summary").children[0].all_text() == "The job was not submitted"
    assert_for_people(tree)
    reply = script_post(script, "submitmrsltext", [])
    assert exit_code(reply) == 102 and "** missing required field: mrsltextarea_0 **" in reply


def test_a_broken_text_job_names_its_line_in_the_text_kept(session):
    conn, cookie = session
    text = "::EXECUTE::\necho hi\n\n::CPUTIME::\nlots\n"
    _page, tree = browser_post(conn, cookie, "submitmrsltext", [("mrsltextarea_0", text)],
                               "submitjob.py?style=textarea")
    assert tree.by_id("f-mrsltextarea_0").all_text() == text
    assert tree.by_id("e-mrsltextarea_0").all_text() == \
        "Line 5, CPUTIME: invalid value 'lots' (allowed: digits only)"
    assert_for_people(tree)


def test_a_sweep_error_keeps_the_text_and_parameters(session, script):
    conn, cookie = session
    job = "::EXECUTE::\necho +x+\n"
    _page, tree = browser_post(conn, cookie, "sweep", [("mrsltextarea_0", job),
                                                       ("params", "x=1:0"), ("mode", "zip")],
                               "submitjob.py?style=sweep")
    assert tree.by_id("f-mrsltextarea_0").all_text() == job
    assert tree.by_id("f-params").all_text() == "x=1:0"
    assert [o.attrs["value"] for o in tree.by_id("f-mode").walk() if "selected" in o.attrs] \
        == ["zip"]
    assert tree.by_id("f-params").next_sibling().attrs.get("id") == "e-params"
    assert tree.by_id("error-summary").children[0].all_text() == "The sweep was not submitted"
    assert_for_people(tree)
    _page, tree = browser_post(conn, cookie, "sweep", [("params", "x=1,2")],
                               "submitjob.py?style=sweep")
    assert tree.by_id("e-mrsltextarea_0").all_text().startswith("Write the job here")
    assert tree.by_id("f-params").all_text() == "x=1,2"
    assert_for_people(tree)
    reply = script_post(script, "sweep", [("mrsltextarea_0", job), ("params", "x=1:0")])
    assert exit_code(reply) == 100 and reply.count("** ") == 1
    reply = script_post(script, "sweep", [("params", "x=1")])
    assert exit_code(reply) == 102 and "** missing required field: mrsltextarea_0 **" in reply


def test_a_wrong_current_password_shows_the_form_with_the_error_next_to_it(session, portal):
    conn, cookie = session
    _page, tree = browser_post(conn, cookie, "changepassword", [
        ("current", "not-my-password"), ("password", "second-password"),
        ("repeat", "second-password"), ("revoke_tokens", "on")], "settings.py")
    error = tree.by_id("f-current").next_sibling()
    assert error.attrs.get("id") == "e-current"
    assert error.all_text() == "This is not your current password: type it again."
    assert tree.by_id("f-password").attrs["value"] == ""  # passwords are not sent back
    assert "checked" in tree.by_id("f-revoke_tokens").attrs
    assert tree.by_id("error-summary").children[0].all_text() == "Your password was not changed"
    assert_for_people(tree)
    assert portal_login(https_connection(portal), "alice", "first-password")[2]  # unchanged


def test_any_failed_html_request_speaks_to_people_and_leads_back(session, script):
    conn, cookie = session
    _page, tree = browser_post(conn, cookie, "submitfields", [("EXECUTE", "true"),
                                                              ("RUNTIMEENVIRONMENT", "NOPE")])
    assert "NOPE" in tree.by_id("e-RUNTIMEENVIRONMENT").all_text()
    assert "checked" in [n for n in tree.by_id("f-RUNTIMEENVIRONMENT").walk()
                         if n.attrs.get("value") == "NOPE"][0].attrs  # kept, though unknown
    # The grid's checks join the other problems.
    _page, tree = browser_post(conn, cookie, "submitfields", [("CPUTIME", "x"),
                                                              ("RUNTIMEENVIRONMENT", "NOPE")])
    assert [a.attrs["href"] for a in tree.by_id("error-summary").walk() if a.tag == "a"] == \
        ["#f-EXECUTE", "#f-CPUTIME", "#f-RUNTIMEENVIRONMENT"]
    status, page, _loc = get(conn, "/cgi-bin/jobview.py", cookie,
                             referer="https://%s:%d/cgi-bin/jobman.py" % (conn.host, conn.port))
    tree = Tree(page)
    failed = tree.select("p", **{"class": "msg error failed"})
    assert [p.all_text() for p in failed] == ["Something in the request needs fixing"]
    assert [p.all_text() for p in tree.select("p", **{"class": "msg error"})] == [
        "Nothing was given for the job id: fill it in and try again."]
    back = [a for a in tree.select("a") if a.all_text() == "Back to the page you came from"]
    assert [a.attrs["href"] for a in back] == ["/cgi-bin/jobman.py"]
    assert_for_people(tree)
    # a bulk action with nothing ticked says so in the words of the list
    _page, tree = browser_post(conn, cookie, "jobmanaction", [("action", "cancel")],
                               form_page="jobman.py")
    assert [p.all_text() for p in tree.select("p", **{"class": "msg error"})] == [
        "Nothing was chosen: tick the jobs to act on, then try again."]
    # a value the field check refuses, and a field the page does not take
    for query, said in (("job_id=a%20b", "'a b' is not accepted for the job id: expected "),
                        ("job_id=x&bogus=1", "The form sent something this page does not "
                                             "take: open the page again")):
        _status, page, _loc = get(conn, "/cgi-bin/jobview.py?" + query, cookie)
        errors = [p.all_text() for p in Tree(page).select("p", **{"class": "msg error"})]
        assert len(errors) == 1 and errors[0].startswith(said), errors
    assert "Exit code: 102 Description Invalid argument" in script_post(script, "jobview", [])
    assert re.search(r"\*\* missing required field: job_id \*\*",
                     script_post(script, "jobview", []))


def test_xmlrpc_keeps_the_exit_code_and_wording_of_a_refused_form(appliance_factory):
    from test_rpc import proxy
    app = appliance_factory()
    alice = app.add_user("alice")
    app.start()
    objects, (code, description) = proxy(app, alice).submitfields(
        {"EXECUTE": ["echo hi"], "CPUTIME": ["lots"], "VGRID": ["Generic"]})
    assert (code, description) == (100, "Client error")
    assert [o["text"] for o in objects if o["object_type"] == "error_text"] == [
        "keyword CPUTIME: invalid value 'lots' (allowed: digits only)"]
    objects, (code, description) = proxy(app, alice).sweep({"params": ["x=1"]})
    assert (code, description) == (102, "Invalid argument")
    assert [o["text"] for o in objects if o["object_type"] == "error_text"] == [
        "missing required field: mrsltextarea_0"]
