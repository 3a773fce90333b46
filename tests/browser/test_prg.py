"""Post/Redirect/Get in a real browser: reloading the page a submission led
to, or posting the same form again from the history, makes no second job."""

import re

from selenium.webdriver.common.by import By

from test_portal_journey import fill, login, wait_text


def job_count(browser, portal):
    browser.get(portal.url + "/cgi-bin/jobman.py")
    return int(re.search(r"(\d+) jobs? match\.", browser.find_element(
        By.TAG_NAME, "main").text).group(1))


def test_reload_and_replay_after_a_submit_make_no_second_job(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=textarea")
    fill(browser, "mrsltextarea_0", "::EXECUTE::\necho once\n")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "submitted.")
    assert "?result=" in browser.current_url  # the result is a page of its own (a GET)
    browser.refresh()
    wait_text(browser, "submitted.")
    assert job_count(browser, portal) == 1
    # A new form has a new one-time token: a new job.
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=textarea")
    token = browser.find_element(By.CSS_SELECTOR, "form.stacked input[name=_once]") \
        .get_attribute("value")
    fill(browser, "mrsltextarea_0", "::EXECUTE::\necho once\n")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "submitted.")
    assert job_count(browser, portal) == 2
    # The same form posted again (back button, double click, a replay): its
    # token was used, so nothing runs and the first result is shown.
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=textarea")
    browser.execute_script(
        "document.querySelector('form.stacked input[name=_once]').value = arguments[0];",
        token)
    fill(browser, "mrsltextarea_0", "::EXECUTE::\necho once\n")
    browser.find_element(By.CSS_SELECTOR, "form.stacked button[type=submit]").click()
    wait_text(browser, "submitted.")
    assert job_count(browser, portal) == 2
