"""Following a job live in a real browser: its output streams into the live
box while it runs, and the page turns FINISHED by itself, without a reload."""

from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from test_portal_journey import login, submit_text_job, wait_text

TICKS = "::EXECUTE::\nfor i in 1 2 3 4 5 6; do echo tick-$i; sleep 1; done\n"


def element_text(driver, css):
    try:
        return driver.find_element(By.CSS_SELECTOR, css).text
    except WebDriverException:
        return ""


def test_a_running_job_streams_its_output_and_finishes_in_place(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    submit_text_job(browser, portal, TICKS)
    browser.execute_script("window.migMark = 'same page';")  # gone if the page reloads
    for i in range(1, 7):  # each line shows in the live box within 3 s of the last
        WebDriverWait(browser, 8 if i == 1 else 3,
                      ignored_exceptions=(WebDriverException,)).until(
            lambda d: "tick-%d" % i in element_text(d, "pre.tail"))
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda d: element_text(d, "table[data-kind=job] span.state") == "FINISHED")
    assert browser.execute_script("return window.migMark;") == "same page"
    live = element_text(browser, "p.live")
    assert live.startswith("Updated ") and live.endswith("nothing here changes any more")
    assert not browser.find_elements(By.CSS_SELECTOR, "pre.tail")  # not running any more
    assert any(a.text.endswith(".stdout") for a in browser.find_elements(By.TAG_NAME, "a"))


def test_the_jobs_list_follows_a_job_to_its_end(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    job_id = submit_text_job(browser, portal, "::EXECUTE::\nsleep 2\n")
    browser.get(portal.url + "/cgi-bin/jobman.py")
    browser.execute_script("window.migMark = 'same page';")
    row = ("//table[@data-kind='jobs']//tr[td/a[text()='%s']]//span[contains(@class, 'state')]"
           % job_id)
    WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.find_element(By.XPATH, row).text == "FINISHED")
    assert browser.execute_script("return window.migMark;") == "same page"
    assert element_text(browser, "p.live").endswith("nothing here changes any more")
