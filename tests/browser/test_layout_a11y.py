"""Layout and accessibility on every portal page, in a real browser.

One appliance with demo content (files, a finished and a queued job, a
sweep, a result page) serves every page a signed-in user can open, the
admin's resource pages and the login page.  Each page must fit a 360 px, an
800 px and a 1366 px wide window without horizontal page scrolling (wide
tables scroll in their own box), and pass the WCAG 2.1 AA checks of a11y_checks.js:
contrast, names of controls, links and buttons, alt texts, one h1, lang, a
skip link first, no duplicate ids.  New pages belong in PAGES.
"""

import json
import os
import sys
import time
import urllib.parse

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import (ENTRY, IN_CI, Appliance, https_connection, post, post_backend,
                      resource_conf)
from mig.backends.pages import DOC_TOPICS
from mig.render.html import MENU, menu_entry
from test_portal_journey import login, wait_text

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "a11y_checks.js"), encoding="utf-8") as _handle:
    CHECKS = _handle.read() + "\nreturn migA11yProblems();"

LONG_NAME = "a-rather-long-file-name-without-any-spaces-that-must-not-widen-the-page-" * 2 + ".txt"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f80f0000010100052e3d8c1b00"
                    "00000049454e44ae426082")
FINISHED_JOB = ("::EXECUTE::\necho %s\n\n::JOBNAME::\n%s\n" % ("wide-output-" * 30, LONG_NAME))
QUEUED_JOB = "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n\n::JOBNAME::\nwaits\n"

# Every page a signed-in user can open: (what, path under /cgi-bin/); {names}
# are filled in from the demo content.  Add new pages here.
PAGES = [("dashboard", "dashboard.py"),
         ("submit by fields", "submitjob.py"),
         ("submit mRSL text", "submitjob.py?style=textarea"),
         ("submit by upload", "submitjob.py?style=files"),
         ("submit a sweep", "submitjob.py?style=sweep"),
         ("files", "fileman.py"),
         ("a folder", "fileman.py?path=data"),
         ("a text file", "viewfile.py?path=notes.txt"),
         ("an image", "viewfile.py?path=pic.png"),
         ("the editor", "editor.py?path=notes.txt"),
         ("jobs", "jobman.py"),
         ("a finished job", "jobview.py?job_id={finished}"),
         ("a queued job", "jobview.py?job_id={queued}"),
         ("an error page (mqueue wants POST)", "mqueue.py?action=listqueues"),
         ("vgrids", "vgrids.py"),
         ("resources", "resources.py"),
         ("monitor", "monitor.py"),
         ("downloads", "downloads.py"),
         ("runtime envs", "runtimeenvs.py"),
         ("people", "people.py"),
         ("inbox", "inbox.py"),
         ("accounting", "accounting.py"),
         ("a VGrid", "adminvgrid.py?vgrid_name=Demo"),
         ("a VGrid's wiki", "vgridwiki.py?vgrid_name=Demo"),
         ("a VGrid's forum", "vgridforum.py?vgrid_name=Demo"),
         ("a VGrid's triggers", "lsvgridtriggers.py?vgrid_name=Demo"),
         ("a VGrid's private page", "vgridpage.py?vgrid_name=Demo"),
         ("a runtime environment", "showre.py?re_name=DEMO-1"),
         ("settings", "settings.py"),
         ("shell", "shell.py"),
         ("sweeps", "sweepstatus.py"),
         ("a sweep", "sweepstatus.py?sweep_id={sweep}"),
         ("a result page (PRG)", "{result}")]
PAGES += [("docs: %s" % title, "docs.py?topic=%s" % topic) for topic, title in DOC_TOPICS]
ADMIN_PAGES = [("resource management", "resman.py"),
               ("a resource", "resadmin.py?unique_resource_name={resource}")]
WIDTHS = (360, 800, 1366)  # a phone, a small window, the laptop where Sweeps overflowed


def demo_content(app, user):
    """Files (one with a long name, an image), a finished and a queued job and
    a sweep, made through the appliance as a script would."""
    conn = https_connection(app, user)
    try:
        for name, body in (("notes.txt", b"grid notes " * 40 + b"\n"), ("pic.png", PNG),
                           (LONG_NAME, b"long\n")):
            conn.request("PUT", "/cert_redirect/" + urllib.parse.quote(name), body=body,
                         headers={"User-Agent": "curl/8"})
            conn.getresponse().read()
        post(conn, "/cgi-bin/mkdir.py", "output_format=txt&path=data")
        ids = []
        for text in (FINISHED_JOB, QUEUED_JOB):
            _status, reply = post(conn, "/cgi-bin/textarea.py", urllib.parse.urlencode(
                {"output_format": "txt", "mrsltextarea_0": text}))
            ids += [line.split()[2] for line in reply.splitlines()
                    if line.startswith("textarea") and line.split()[1] == "1"]
        _status, reply = post(conn, "/cgi-bin/sweep.py", urllib.parse.urlencode(
            {"output_format": "json", "mrsltextarea_0": "::EXECUTE::\necho +x+\n",
             "params": "x=1:3"}))
        sweep = reply.split("Sweep ", 1)[1].split()[0]
        assert len(ids) == 2, ids
        for backend, fields in (
                ("createvgrid", {"vgrid_name": "Demo"}),
                ("editvgridwiki", {"vgrid_name": "Demo", "page": "Home",
                                   "text": "# Demo\n- a list, **bold** and [[Other page]]"}),
                ("vgridforumaction", {"vgrid_name": "Demo", "action": "post",
                                      "msg_subject": "A first thread",
                                      "msg_body": "with a message"}),
                ("editvgridpage", {"vgrid_name": "Demo", "page": "private",
                                   "text": "Members only."}),
                ("createre", {"re_name": "DEMO-1", "redescription": "a demo environment",
                              "environment": "name=DEMO_HOME;example=/opt/demo"})):
            status, reply = post(conn, "/cgi-bin/%s.py" % backend, urllib.parse.urlencode(
                dict(fields, output_format="txt")))
            assert reply.startswith("Exit code: 0 "), reply
        return {"finished": ids[0], "queued": ids[1], "sweep": sweep}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The appliance with demo content, a browser, and the names for PAGES."""
    from browser_driver import available, start_browser, stop_browser
    missing = available()
    if missing:
        (pytest.fail if IN_CI else pytest.skip)(missing)
    app = Appliance([sys.executable, ENTRY], str(tmp_path_factory.mktemp("a11y") / "state"))
    driver = None
    try:
        alice = json.loads(app.cli("user", "add", "alice", "--password", "alice-password",
                                   "--json").stdout)
        app.start()
        names = demo_content(app, alice)
        driver = start_browser()
        sign_in(app, driver, "alice", "alice-password")
        driver.get(app.url + "/cgi-bin/submitjob.py?style=textarea")
        driver.find_element(By.NAME, "mrsltextarea_0").clear()
        driver.find_element(By.NAME, "mrsltextarea_0").send_keys("::EXECUTE::\necho prg\n")
        driver.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
        wait_text(driver, "submitted.")
        names["result"] = driver.current_url.split("/cgi-bin/", 1)[1]
        deadline = time.time() + 30
        while time.time() < deadline and not driver.find_elements(
                By.XPATH, "//table[@data-kind='job']//span[contains(@class, 'state')]"
                          "[text()='FINISHED']"):
            time.sleep(0.5)
            driver.get(app.url + "/cgi-bin/jobview.py?job_id=" + names["finished"])
        names["resource"] = add_resource(app)
        yield app, driver, names
    finally:
        if driver is not None:
            stop_browser(driver)
        app.stop()
        app.remove_work_folder()


def sign_in(app, driver, user, password):
    """Log the browser in as user, whoever was signed in before."""
    driver.get(app.url + "/login")
    driver.delete_all_cookies()
    login(driver, app, user, password)
    wait_text(driver, "Signed in as %s" % user)


def as_alice(app, driver):
    driver.get(app.url + "/cgi-bin/dashboard.py")
    if driver.find_elements(By.XPATH, "//header//strong[text()='alice']"):
        return
    sign_in(app, driver, "alice", "alice-password")


def admin_credentials(app):
    with open(os.path.join(app.state, "admin-credentials.json")) as handle:
        return json.load(handle)


def add_resource(app):
    """Register a resource behind a closed port (after the demo jobs ran, so
    none waits for it); returns its name."""
    conf = resource_conf("127.0.0.1", ["name=exe0", "cputime=600"], port=9)
    reply = post_backend(app, admin_credentials(app), "reseditaction",
                         [("resconfig", conf), ("owner", "alice")])
    assert "Registered 127.0.0.1.0." in reply, reply
    return "127.0.0.1.0"


def as_admin(app, driver):
    admin = admin_credentials(app)
    sign_in(app, driver, admin["user"], admin["password"])


def open_page(app, driver, path):
    driver.get(app.url + "/cgi-bin/" + path)  # returns once the page has loaded


def overflow_problems(driver, what):
    """The page's width against the window's, with the elements that stick out."""
    found = []
    for width in WIDTHS:
        driver.set_window_size(width, 800)
        scroll, inner = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth];")
        if scroll > inner:
            wide = driver.execute_script(
                "var w = window.innerWidth; return Array.prototype.filter.call("
                "document.querySelectorAll('body *'), function (e) {"
                "return e.getBoundingClientRect().right > w + 0.5; }).slice(0, 4).map("
                "function (e) { return e.tagName.toLowerCase() + '.' + e.className; });")
            found.append("%s at %d px: page %d px wide (%s)" % (what, width, scroll, wide))
    driver.set_window_size(1280, 900)
    return found


def check_pages(app, driver, pages, names):
    problems = []
    for what, path in pages:
        open_page(app, driver, path.format(**names))
        problems += ["%s: %s" % (what, p) for p in driver.execute_script(CHECKS)]
        problems += overflow_problems(driver, what)
    return problems


def test_pages_list_covers_the_menu():
    """A new menu entry needs its page in PAGES."""
    listed = {path.split(".py", 1)[0] for _what, path in PAGES}
    assert {name for name, _label in MENU} <= listed


def test_every_backend_has_a_menu_entry_to_highlight():
    """A new backend's pages (and form results) need their entry in
    mig.render.html.MENU_PARENTS, else no menu entry is marked on them."""
    from mig.backends.catalog import load_all
    entries = {name for name, _label in MENU}
    missing = sorted(name for name in load_all() if menu_entry(name) not in entries)
    assert not missing, "add to MENU_PARENTS in mig/render/html.py: %s" % missing


def test_every_page_fits_small_windows_and_passes_the_checks(site):
    app, driver, names = site
    as_alice(app, driver)
    problems = check_pages(app, driver, PAGES, names)
    driver.delete_all_cookies()
    driver.get(app.url + "/login")
    problems += ["login: %s" % p for p in driver.execute_script(CHECKS)]
    problems += overflow_problems(driver, "login")
    as_admin(app, driver)
    problems += check_pages(app, driver, ADMIN_PAGES, names)
    assert not problems, "\n".join(problems)


def contrast(first, second):
    """WCAG contrast ratio of two computed rgb() colours."""
    def luminance(colour):
        channels = [int(float(v)) / 255 for v in colour[colour.index("(") + 1:-1].split(",")[:3]]
        channels = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_tab_reaches_the_skip_link_first_and_menu_focus_is_visible(site):
    app, driver, names = site
    as_alice(app, driver)
    driver.get(app.url + "/cgi-bin/jobview.py?job_id=" + names["finished"])
    ActionChains(driver).send_keys(Keys.TAB).perform()  # from the top of a fresh page
    first = driver.switch_to.active_element
    assert first.get_attribute("class") == "skip-link" and first.text == "Skip to content"
    assert first.is_displayed() and first.rect["width"] > 0 and first.rect["y"] >= 0
    first.send_keys(Keys.ENTER)
    assert driver.execute_script("return location.hash") == "#content"
    ActionChains(driver).send_keys(Keys.TAB).perform()  # the next stop is past the menu
    assert driver.execute_script("return document.activeElement.closest('main#content') !== null")
    menu = driver.find_elements(By.CSS_SELECTOR, "nav.menu a")
    driver.get(driver.current_url.split("#", 1)[0])
    seen = 0
    ActionChains(driver).send_keys(Keys.TAB).perform()  # the skip link
    for _ in range(len(menu)):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        ring = driver.execute_script(
            "var e = document.activeElement, s = getComputedStyle(e);"
            "return {menu: e.closest('nav.menu') !== null, label: e.textContent,"
            "width: parseFloat(s.outlineWidth), style: s.outlineStyle, colour: s.outlineColor,"
            "behind: getComputedStyle(e.closest('nav') || document.body).backgroundColor};")
        if not ring["menu"]:
            continue
        seen += 1
        # A ring of its own (the active entry's bar is no focus mark), 2 px at
        # least, with 3:1 against the menu (Chromium's thin default is not enough).
        assert ring["width"] >= 2 and ring["style"] not in ("none", "auto"), ring
        assert contrast(ring["colour"], ring["behind"]) >= 3, ring
    assert seen == len(menu)


@pytest.mark.parametrize("path, entry", [
    ("jobview.py?job_id={finished}", "jobman"), ("sweepstatus.py?sweep_id={sweep}", "jobman"),
    ("editor.py?path=notes.txt", "fileman"), ("viewfile.py?path=notes.txt", "fileman"),
    ("monitor.py", "resources"), ("{result}", "submitjob"), ("dashboard.py", "dashboard")])
def test_sub_pages_highlight_their_menu_entry(site, path, entry):
    app, driver, names = site
    as_alice(app, driver)
    open_page(app, driver, path.format(**names))
    active = driver.find_elements(By.CSS_SELECTOR, "nav.menu a.active")
    assert [a.get_attribute("href").rsplit("/", 1)[1] for a in active] == [entry + ".py"]
    assert active[0].get_attribute("aria-current") == "page"


def test_upload_progress_is_labelled_and_told_in_live_text(site, tmp_path):
    app, driver, _names = site
    as_alice(app, driver)
    big = tmp_path / "progress-test.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    driver.get(app.url + "/cgi-bin/fileman.py")
    form = driver.find_element(By.CSS_SELECTOR, "form[data-upload]")
    bar = form.find_element(By.CSS_SELECTOR, "progress")
    assert bar.get_attribute("aria-label") == "Upload progress"
    said = form.find_element(By.CSS_SELECTOR, ".progress-text")
    assert said.get_attribute("role") == "status" and said.get_attribute("aria-live") == "polite"
    driver.execute_script(  # keep what the live text says (files.js fills it in)
        "var said = arguments[0]; window.migSaid = [];"
        "new MutationObserver(function () { window.migSaid.push(said.textContent); })"
        ".observe(said, {childList: true, characterData: true, subtree: true});", said)
    form.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(big))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: [text for text in d.execute_script(
        "return window.migSaid || [];") if text.strip()])


BAD_PAGE = """<!DOCTYPE html><html><head><title>bad</title></head><body style="background:#fff">
<button id="twice"></button><h1>One</h1><h1 id="twice">Two</h1>
<p id="pale" style="color:#aaaaaa">pale text</p>
<p style="color:#888888;font-size:30px">large grey (3.5:1)</p>
<div style="background:#16202c"><span style="color:#c9d4df">light on dark</span></div>
<img src="data:,"><input type="text" name="nameless"><label>wrapped <input name="wrapped"></label>
<a href="/somewhere"></a><progress value="1" max="2"></progress><main>no id</main></body></html>"""


def test_the_checks_find_each_kind_of_problem(site):
    """The checker itself, on a page with one problem of each kind."""
    _app, driver, _names = site
    driver.get("data:text/html;charset=utf-8," + urllib.parse.quote(BAD_PAGE))
    found = driver.execute_script(CHECKS)
    expected = ["contrast 2.32:1 < 4.5:1", "form control without a name: input",
                "img without alt", "link or button without a name: <a", "link or button "
                "without a name: <button", "expected one h1, found 2", "html has no lang",
                "the first focusable element is not a skip link", "no main#content",
                "duplicate id: twice", "progress bar without a name"]
    for problem in expected:
        assert [line for line in found if line.startswith(problem)], (problem, found)
    assert len(found) == len(expected), found  # large text, light on dark, wrapped: fine
