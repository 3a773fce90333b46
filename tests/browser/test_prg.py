"""Post/Redirect/Get in a real browser: reloading the page a submission led
to, or posting the same form again from the history, makes no second job."""

import re

from selenium.webdriver.common.by import By

from test_portal_journey import login, post_text_job, wait_text

ONCE = "::EXECUTE::\necho once\n"


def job_count(browser, portal):
    browser.get(portal.url + "/cgi-bin/jobman.py")
    return int(re.search(r"(\d+) jobs? match\.", browser.find_element(
        By.TAG_NAME, "main").text).group(1))


def test_reload_and_replay_after_a_submit_make_no_second_job(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    post_text_job(browser, portal, ONCE)
    assert "?result=" in browser.current_url  # the result is a page of its own (a GET)
    browser.refresh()
    wait_text(browser, "submitted.")
    assert job_count(browser, portal) == 1
    # A new form has a new one-time token: a new job.
    token = post_text_job(browser, portal, ONCE)
    assert job_count(browser, portal) == 2
    # The same form posted again (back button, double click, a replay): its
    # token was used, so nothing runs and the first result is shown.
    assert post_text_job(browser, portal, ONCE, once=token) == token
    assert job_count(browser, portal) == 2
