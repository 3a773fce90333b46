"""A person's journey through the portal in a real browser, plus the checks
that user strings are shown as text and that forged posts are refused."""

import time

import pytest
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def page_text(driver):
    return driver.find_element(By.TAG_NAME, "body").text


def wait_text(driver, text, timeout=20):
    """Wait until the rendered page shows text.  Pages may be reloading
    meanwhile, so a body that went away under the driver (stale or missing
    node, or Chromium's "does not belong to the document") is tried again."""
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda d: text in page_text(d))


def wait_upload(driver, summary, timeout=30):
    """Wait for the upload widget's own status line to say the upload ended."""
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "form[data-upload] .progress-text").text
        == "Upload finished: " + summary)


def refresh_until(driver, found, timeout=30):
    """Reload the page until found(its text) holds (a job's page changes as it
    runs); a page caught reloading is read again, as in wait_text."""
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda d: (d.refresh() or True) and found(page_text(d)))


def fill(driver, name, text, clear=True, tries=5):
    """Type into a field, again if the page was still settling (stale nodes)."""
    for attempt in range(tries):
        try:
            field = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.NAME, name))
            if clear:
                field.clear()
            field.send_keys(text)
            return
        except WebDriverException:
            if attempt == tries - 1:
                raise
            time.sleep(0.3)


def login(driver, app, user, password):
    driver.get(app.url + "/login")
    fill(driver, "user", user)
    fill(driver, "password", password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def step_login_and_submit_by_text_and_fields(browser, portal):
    login(browser, portal, "alice", "wrong password")
    wait_text(browser, "Wrong user name or password.")
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    assert "Signed in as alice" in browser.find_element(By.TAG_NAME, "body").text

    # textarea style
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=textarea")
    fill(browser, "mrsltextarea_0", "::EXECUTE::\necho from textarea\n\n::JOBNAME::\nbytext\n")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "submitted.")
    browser.find_element(By.LINK_TEXT, "Open the job").click()
    refresh_until(browser, lambda text: "FINISHED" in text)

    # fields style, with an error shown next to the field at fault first
    browser.get(portal.url + "/cgi-bin/submitjob.py")
    browser.find_element(By.NAME, "EXECUTE").send_keys("echo from fields")
    browser.find_element(By.NAME, "CPUTIME").send_keys("lots")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "invalid value 'lots'")
    error = browser.find_element(By.CSS_SELECTOR, ".field-error")
    assert error.find_element(By.XPATH, "preceding-sibling::input[1]").get_attribute("name") == "CPUTIME"
    cputime = browser.find_element(By.NAME, "CPUTIME")
    cputime.clear()
    cputime.send_keys("60")
    browser.find_element(By.NAME, "JOBNAME").send_keys("byfields")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "submitted.")

    browser.get(portal.url + "/cgi-bin/jobman.py")
    deadline = time.time() + 30
    while time.time() < deadline:
        states = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "td .state")]
        if states.count("FINISHED") == 2:
            break
        time.sleep(0.5)
        browser.refresh()
    assert states.count("FINISHED") == 2, states


def test_job_name_and_errors_are_text_not_markup(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome")
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=textarea")
    fill(browser, "mrsltextarea_0", "::EXECUTE::\necho hi\n\n::JOBNAME::\n<script>window.pwned=1</script>\n")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "<script>window.pwned=1</script>")
    assert browser.execute_script("return window.pwned === undefined")
    alerts = browser.find_elements(By.CSS_SELECTOR, ".field-error")
    assert alerts and "<script>" in alerts[0].text


def test_cross_site_post_without_token_is_refused(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome")
    # A form that another site would make: same fields, no _csrf.
    browser.execute_script("""
        var f = document.createElement('form'); f.method = 'post';
        f.action = '/cgi-bin/submitmrsltext.py';
        var t = document.createElement('textarea'); t.name = 'mrsltextarea_0';
        t.value = '::EXECUTE::\\necho forged\\n'; f.appendChild(t);
        document.body.appendChild(f); f.submit();""")
    wait_text(browser, "missing or invalid CSRF token")
    browser.get(portal.url + "/cgi-bin/jobman.py")
    assert "0 jobs match." in browser.find_element(By.TAG_NAME, "body").text


def post_text_job(browser, portal, text, once=None):
    """Submit text on the Submit Job page (with once: as a replay of the form
    that carried that one-time token); returns the form's one-time token."""
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=textarea")
    token = browser.find_element(By.CSS_SELECTOR, "form.stacked input[name=_once]")
    if once is not None:
        browser.execute_script("arguments[0].value = arguments[1];", token, once)
    used = token.get_attribute("value")
    fill(browser, "mrsltextarea_0", text)
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "submitted.")
    return used


def submit_text_job(browser, portal, text):
    post_text_job(browser, portal, text)
    browser.find_element(By.LINK_TEXT, "Open the job").click()
    wait_text(browser, "History")
    return browser.current_url.split("job_id=", 1)[1]


def step_output_cancel_password_logout(browser, portal):
    # open an output file of a finished job
    submit_text_job(browser, portal, "::EXECUTE::\necho the answer is 42\n")
    refresh_until(browser, lambda text: "Output files" in text)
    stdout_link = [a for a in browser.find_elements(By.CSS_SELECTOR, "a")
                   if a.text.endswith(".stdout")][0]
    stdout_link.click()
    wait_text(browser, "the answer is 42")

    # a long job shows live output while it runs, then is cancelled from its page
    job_id = submit_text_job(browser, portal,
                             "::EXECUTE::\necho started-long-job\nsleep 600\n")
    refresh_until(browser, lambda text: "EXECUTING" in text)
    wait_text(browser, "started-long-job", timeout=15)  # the live tail
    cancel = [b for b in browser.find_elements(By.CSS_SELECTOR, "button") if b.text == "Cancel"][0]
    cancel.click()
    browser.switch_to.alert.accept()  # "Cancel this job?"
    wait_text(browser, "CANCELED")
    browser.get(portal.url + "/cgi-bin/jobview.py?job_id=" + job_id)
    wait_text(browser, "CANCELED")

    # change the password, log out, log back in with the new one
    browser.get(portal.url + "/cgi-bin/settings.py")
    browser.find_element(By.NAME, "current").send_keys("first-password")
    browser.find_element(By.NAME, "password").send_keys("second-password")
    browser.find_element(By.NAME, "repeat").send_keys("second-password")
    browser.find_element(By.XPATH, "//button[text()='Change password']").click()
    wait_text(browser, "Your password was changed.")
    browser.find_element(By.XPATH, "//button[text()='Log out']").click()
    wait_text(browser, "Log in")
    browser.get(portal.url + "/cgi-bin/dashboard.py")
    wait_text(browser, "Log in")  # logged out: back to the login page
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Wrong user name or password.")
    login(browser, portal, "alice", "second-password")
    wait_text(browser, "Welcome, alice.")


def step_files_upload_edit_and_submit_by_file(browser, portal, tmp_path):
    first = tmp_path / "first.txt"
    first.write_text("one\n")
    evil = tmp_path / "<img src=x onerror=alert(1)>.txt"
    evil.write_text("not a script\n")
    job = tmp_path / "byfile.mRSL"
    job.write_text("::EXECUTE::\ncat first.txt\n\n::INPUTFILES::\nfirst.txt\n\n::JOBNAME::\nbyfile\n")

    # upload two files at once on the Files page (one with a hostile name)
    browser.get(portal.url + "/cgi-bin/fileman.py")
    browser.find_element(By.NAME, "files").send_keys("%s\n%s" % (first, evil))
    browser.find_element(By.XPATH, "//button[text()='Upload']").click()
    wait_upload(browser, "2 of 2 files uploaded.")
    browser.get(portal.url + "/cgi-bin/fileman.py")
    wait_text(browser, "<img src=x onerror=alert(1)>.txt")  # shown as text
    assert browser.find_elements(By.CSS_SELECTOR, "main img") == []
    with pytest.raises(NoAlertPresentException):  # the name was not executed
        browser.switch_to.alert.text

    # edit a text file in the browser
    browser.get(portal.url + "/cgi-bin/editor.py?path=first.txt")
    fill(browser, "editarea", "edited in the browser\n")
    browser.find_element(By.XPATH, "//button[text()='Save']").click()
    wait_text(browser, "Saved")
    browser.get(portal.url + "/cgi-bin/viewfile.py?path=first.txt")
    wait_text(browser, "edited in the browser")

    # the third submit style: upload an .mRSL file, which is submitted
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=files")
    browser.find_element(By.NAME, "files").send_keys(str(job))
    browser.find_element(By.XPATH, "//button[text()='Upload']").click()
    wait_upload(browser, "1 of 1 file uploaded.")
    browser.get(portal.url + "/cgi-bin/jobman.py?name=byfile")
    deadline = time.time() + 30
    while "FINISHED" not in page_text(browser) and time.time() < deadline:
        time.sleep(0.5)
        browser.refresh()
    assert "FINISHED" in page_text(browser)
    browser.find_element(By.CSS_SELECTOR, "td a[href*='jobview']").click()  # the job's id
    wait_text(browser, "Output files")
    [a for a in browser.find_elements(By.CSS_SELECTOR, "a") if a.text.endswith(".stdout")][0].click()
    wait_text(browser, "edited in the browser")


def test_whole_journey(browser, portal, tmp_path):
    """Log in with a password; submit in each of the three styles and watch them
    finish; upload two files, view and edit one; open an output file; cancel a
    long job; change the password, log out, and log back in with the new one."""
    step_login_and_submit_by_text_and_fields(browser, portal)
    step_files_upload_edit_and_submit_by_file(browser, portal, tmp_path)
    browser.get(portal.url + "/cgi-bin/jobman.py?state=FINISHED")
    assert "3 jobs match." in page_text(browser)  # one per submit style
    step_output_cancel_password_logout(browser, portal)


def test_sweep_from_the_portal(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome")
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=sweep")
    fill(browser, "params", "x=1:4\ny=a,b")
    browser.find_element(By.XPATH, "//button[text()='Submit sweep']").click()
    wait_text(browser, "accepted: 6 jobs.")
    browser.find_element(By.LINK_TEXT, "Follow the sweep").click()
    refresh_until(browser, lambda text: " 6 0 0 0 0 0 0 6 " in " ".join(text.split()) + " ", 60)
    assert "Resubmit sweep_" in page_text(browser)
