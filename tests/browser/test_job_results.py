"""Job results, the Jobs list and the first hour in a real browser: a job that
exits 3 is marked on its page and in the list, its stdout is inline and its
declared output file opens from a link; the list sorts and cancels a queued
job from its row; a new user's Dashboard runs a sample job; a help link of
the fields form lands on its keyword."""

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from mig.core.keywords import KEYWORDS
from test_portal_journey import login, post_text_job, submit_text_job, wait_text

FAILS = ("::EXECUTE::\necho the answer is 42\necho kept > result.txt\nexit 3\n\n"
         "::OUTPUTFILES::\nresult.txt results/+JOBID+.txt\n")
NOWHERE = "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n\n::JOBNAME::\n%s\n"


def until(driver, found, timeout=30):
    """Wait for found(driver); a page being swapped in place is read again."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(found)


def css_text(css):
    return lambda d: d.find_element(By.CSS_SELECTOR, css).text


def row_xpath(job_id, inner=""):
    return "//table[@data-kind='jobs']//tr[td/a[text()='%s']]%s" % (job_id, inner)


def listed_ids(driver):
    return [a.text for a in driver.find_elements(
        By.CSS_SELECTOR, "table[data-kind=jobs] tbody td:nth-child(2) a")]


def test_a_job_that_exits_3_is_marked_and_shows_its_results(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    good = submit_text_job(browser, portal, "::EXECUTE::\necho all good\n")
    until(browser, lambda d: css_text("table[data-kind=job] span.state")(d) == "FINISHED")
    bad = submit_text_job(browser, portal, FAILS)
    until(browser, lambda d: css_text("table[data-kind=job] span.state")(d) == "FINISHED")
    # marked on its page (the job's status and the command's exit code) ...
    assert css_text("table[data-kind=job] .badge.exit-failed")(browser) == "exit 3"
    row = browser.find_element(By.XPATH, "//table[@data-kind='exitcodes']//tr[td[1]='exit 3']")
    assert row.find_element(By.CSS_SELECTOR, ".badge.exit-failed").text == "exit 3"
    # ... its stdout inline, and the declared output file linked into the home
    assert browser.find_element(By.ID, "job-stdout").text == "the answer is 42"
    link = browser.find_element(By.CSS_SELECTOR, "table[data-kind=outputfiles] td a")
    assert link.text == "results/%s.txt" % bad
    link.click()
    until(browser, lambda d: d.current_url.endswith("/cert_redirect/results/%s.txt" % bad))
    assert browser.find_element(By.TAG_NAME, "body").text == "kept"
    # ... and in the Jobs list, where the job that exited 0 is not marked
    browser.get(portal.url + "/cgi-bin/jobman.py")
    badge = browser.find_element(By.XPATH, row_xpath(bad, "//span[contains(@class, 'badge')]"))
    assert badge.get_attribute("class") == "badge exit-failed" and badge.text == "exit 3"
    assert browser.find_elements(By.XPATH, row_xpath(good, "//span[contains(@class, "
                                                     "'exit-failed')]")) == []
    assert browser.find_element(By.XPATH, row_xpath(good, "//span[contains(@class, "
                                                    "'state')]")).text == "FINISHED"


def test_the_jobs_list_sorts_and_cancels_a_queued_job_from_its_row(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    for name in ("bravo", "charlie", "alpha"):  # no resource has SPARC: they stay QUEUED
        post_text_job(browser, portal, NOWHERE % name)
    browser.get(portal.url + "/cgi-bin/jobman.py")
    newest = listed_ids(browser)
    assert len(newest) == 3 and [int(j.split("_")[0]) for j in newest] == [2, 1, 0]
    Select(browser.find_element(By.NAME, "sort")).select_by_value("name")
    browser.find_element(By.XPATH, "//button[text()='Filter']").click()
    until(browser, lambda d: "sort=name" in d.current_url)
    assert listed_ids(browser) == [newest[0], newest[2], newest[1]]  # alpha, bravo, charlie
    Select(browser.find_element(By.NAME, "sort")).select_by_value("oldest")
    browser.find_element(By.XPATH, "//button[text()='Filter']").click()
    until(browser, lambda d: "sort=oldest" in d.current_url)
    assert listed_ids(browser) == newest[::-1]
    # cancel bravo from its own row: only it, even with another job ticked for the
    # bulk buttons (a row's form is its own, not nested in the bulk form)
    bravo = newest[2]
    browser.find_element(By.XPATH, row_xpath(newest[1], "//input[@type='checkbox']")).click()
    browser.find_element(By.XPATH, row_xpath(bravo, "//button[text()='Cancel']")).click()
    assert browser.switch_to.alert.text == "Cancel job %s?" % bravo
    browser.switch_to.alert.accept()
    until(browser, lambda d: "?result=" in d.current_url)
    browser.get(portal.url + "/cgi-bin/jobman.py")
    states = {j: browser.find_element(By.XPATH, row_xpath(j, "//span[contains(@class, "
                                                          "'state')]")).text for j in newest}
    assert states == {newest[0]: "QUEUED", newest[1]: "QUEUED", bravo: "CANCELED"}
    assert browser.find_elements(By.XPATH, row_xpath(bravo, "//button[text()='Cancel']")) == []


def test_a_new_user_runs_the_sample_job_from_the_dashboard(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    assert browser.find_elements(By.CSS_SELECTOR, "main .cards") == []  # no wall of zeros
    assert browser.find_element(By.LINK_TEXT, "Getting started").get_attribute("href") \
        .endswith("/cgi-bin/docs.py?topic=start")
    browser.find_element(By.CSS_SELECTOR,
                         "form[action='/cgi-bin/samplejob.py'] button").click()
    wait_text(browser, "submitted.")
    assert "?result=" in browser.current_url
    browser.find_element(By.LINK_TEXT, "Open the job").click()
    until(browser, lambda d: css_text("table[data-kind=job] span.state")(d) == "FINISHED")
    assert browser.find_element(By.ID, "job-stdout").text.startswith(
        "Hello from the sample job ")
    assert browser.find_elements(By.CSS_SELECTOR, "table[data-kind=job] .exit-failed") == []
    browser.get(portal.url + "/cgi-bin/dashboard.py")
    wait_text(browser, "You have 1 job.")
    assert browser.find_elements(By.CSS_SELECTOR, "main .cards")
    assert browser.find_elements(By.CSS_SELECTOR, "form[action='/cgi-bin/samplejob.py']") == []


def test_a_help_link_of_the_fields_form_lands_on_its_keyword(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    keyword = KEYWORDS[-1].name  # the last row of the table: the page must scroll to it
    browser.get(portal.url + "/cgi-bin/submitjob.py")
    link = browser.find_element(By.CSS_SELECTOR, "label[for='f-%s'] a" % keyword)
    if not link.is_displayed():  # among the folded options: unfold them as a person would
        browser.find_element(By.CSS_SELECTOR, "form.stacked details > summary").click()
    link.click()
    until(browser, lambda d: d.execute_script("return location.hash;") == "#" + keyword)
    assert "topic=mrsl" in browser.current_url
    target = browser.find_element(By.ID, keyword)
    assert target.text == keyword
    top, bottom, height, scrolled = browser.execute_script(
        "var r = arguments[0].getBoundingClientRect();"
        "return [r.top, r.bottom, window.innerHeight, window.scrollY];", target)
    assert scrolled > 0 and 0 <= top and bottom <= height, (top, bottom, height, scrolled)
