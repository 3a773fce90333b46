"""Errors for people in a real browser (issue 12, points 2 and 6): a refused
form comes back with what was typed and every problem next to its field,
summed up on top where it is seen without scrolling; no exit codes or
internal field names; the fields form is short, the rest folded away."""

from selenium.webdriver.common.by import By

from test_portal_journey import fill, login, wait_text

FORBIDDEN = ("exit code", "Client error", "Invalid argument", "mrsltextarea_0",
             "missing required field")


def signed_in(browser, portal):
    login(browser, portal, "alice", "first-password")
    wait_text(browser, "Welcome, alice.")


def submit(browser, form_action):
    browser.find_element(By.CSS_SELECTOR, "form[action='/cgi-bin/%s.py'] button[type=submit]"
                         % form_action).click()


def problem_of(browser, name, timeout=20):
    """The problem shown right after the field (the element that follows it)."""
    wait_text(browser, "needs fixing", timeout)
    return browser.execute_script(
        "var c = document.getElementById('f-' + arguments[0]); var e = c.nextElementSibling;"
        "return e && e.classList.contains('field-error') ? e.textContent : null;", name)


def value_of(browser, name):
    return browser.find_element(By.ID, "f-%s" % name).get_attribute("value")


def in_view(browser, element):
    """The whole element is inside the window as loaded (no scrolling)."""
    return browser.execute_script(
        "var r = arguments[0].getBoundingClientRect(); return window.scrollY === 0 && "
        "r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;", element)


def assert_for_people(browser):
    text = browser.find_element(By.TAG_NAME, "main").text
    for internal in FORBIDDEN:
        assert internal not in text, (internal, text)


def test_a_broken_mrsl_submitted_by_fields_shows_the_message_next_to_the_field(browser, portal):
    signed_in(browser, portal)
    browser.get(portal.url + "/cgi-bin/submitjob.py")
    fill(browser, "EXECUTE", "echo kept\necho lines")
    fill(browser, "CPUTIME", "lots")
    submit(browser, "submitfields")
    assert problem_of(browser, "CPUTIME") == "invalid value 'lots' (allowed: digits only)"
    assert value_of(browser, "CPUTIME") == "lots"
    assert value_of(browser, "EXECUTE") == "echo kept\necho lines"
    assert browser.find_element(By.ID, "f-CPUTIME").get_attribute("aria-invalid") == "true"
    assert_for_people(browser)


def test_several_problems_are_shown_at_once_and_on_top(browser, portal):
    signed_in(browser, portal)
    browser.get(portal.url + "/cgi-bin/submitjob.py")
    fill(browser, "CPUTIME", "lots")
    fill(browser, "MEMORY", "a lot")
    fill(browser, "INPUTFILES", "../../etc/passwd")
    submit(browser, "submitfields")
    assert problem_of(browser, "EXECUTE").startswith("EXECUTE is required")
    assert problem_of(browser, "CPUTIME") == "invalid value 'lots' (allowed: digits only)"
    assert problem_of(browser, "MEMORY") == "invalid value 'a lot' (allowed: digits only)"
    assert "points outside the home" in problem_of(browser, "INPUTFILES")
    summary = browser.find_element(By.ID, "error-summary")
    assert in_view(browser, summary)
    assert browser.switch_to.active_element == summary  # read first
    assert summary.find_element(By.TAG_NAME, "h2").text == "The job was not submitted"
    links = summary.find_elements(By.CSS_SELECTOR, "li a")
    assert [a.get_attribute("hash") for a in links] == [
        "#f-EXECUTE", "#f-INPUTFILES", "#f-CPUTIME", "#f-MEMORY"]
    links[3].click()  # a link leads to its field
    assert browser.execute_script("return location.hash") == "#f-MEMORY"
    assert_for_people(browser)


def test_empty_job_text_shows_the_text_form_again(browser, portal):
    signed_in(browser, portal)
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=textarea")
    fill(browser, "mrsltextarea_0", "x")
    browser.find_element(By.NAME, "mrsltextarea_0").clear()
    browser.find_element(By.NAME, "save_as_default").click()
    submit(browser, "submitmrsltext")
    assert problem_of(browser, "mrsltextarea_0").startswith(
        "The job description is empty: write the commands to run under ::EXECUTE::")
    assert browser.find_element(By.ID, "f-save_as_default").is_selected()
    assert in_view(browser, browser.find_element(By.ID, "error-summary"))
    assert_for_people(browser)


def test_a_sweep_error_keeps_the_sweep_text_and_parameters(browser, portal):
    signed_in(browser, portal)
    browser.get(portal.url + "/cgi-bin/submitjob.py?style=sweep")
    fill(browser, "mrsltextarea_0", "::EXECUTE::\necho +x+ +y+\n")
    fill(browser, "params", "x=1,2\ny=1:0")
    submit(browser, "sweep")
    assert problem_of(browser, "params")
    assert value_of(browser, "mrsltextarea_0") == "::EXECUTE::\necho +x+ +y+\n"
    assert value_of(browser, "params") == "x=1,2\ny=1:0"
    assert browser.find_element(By.CSS_SELECTOR, "#error-summary h2").text == \
        "The sweep was not submitted"
    assert_for_people(browser)


def test_a_wrong_current_password_shows_the_form_with_the_error_next_to_it(browser, portal):
    signed_in(browser, portal)
    browser.get(portal.url + "/cgi-bin/settings.py")
    fill(browser, "current", "not my password")
    fill(browser, "password", "second-password")
    fill(browser, "repeat", "second-password")
    submit(browser, "changepassword")
    assert problem_of(browser, "current") == "This is not your current password: type it again."
    assert browser.find_element(By.CSS_SELECTOR, "#error-summary h2").text == \
        "Your password was not changed"
    assert value_of(browser, "current") == ""  # passwords are never sent back
    assert_for_people(browser)


def test_a_failed_page_outside_the_forms_speaks_to_people(browser, portal):
    signed_in(browser, portal)
    browser.get(portal.url + "/cgi-bin/jobview.py")
    status = browser.find_element(By.CSS_SELECTOR, "p.msg.error.failed")
    assert status.text == "Something in the request needs fixing"
    assert_for_people(browser)


def test_the_fields_form_is_short_with_the_rest_folded_away(browser, portal):
    signed_in(browser, portal)
    browser.get(portal.url + "/cgi-bin/submitjob.py")
    assert browser.execute_script("return window.innerWidth") == 1280
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/cgi-bin/submitfields.py']")
    for name in ("EXECUTE", "INPUTFILES", "OUTPUTFILES", "CPUTIME", "MEMORY", "JOBNAME"):
        assert in_view(browser, browser.find_element(By.ID, "f-%s" % name)), name
    assert in_view(browser, form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    height = browser.execute_script("return arguments[0].getBoundingClientRect().height", form)
    assert height < 800, height
    details = form.find_element(By.CSS_SELECTOR, "details.advanced")
    assert details.get_attribute("open") is None
    assert not browser.find_element(By.ID, "f-RUNTIMEENVIRONMENT").is_displayed()
    assert not browser.find_element(By.ID, "f-VGRID").is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    vgrid = browser.find_element(By.CSS_SELECTOR, "#f-VGRID input[value=Generic]")
    assert vgrid.is_displayed()
    # A job from the choices runs.
    fill(browser, "EXECUTE", "echo chosen")
    vgrid.click()
    submit(browser, "submitfields")
    wait_text(browser, "submitted.")
