"""A VGrid in a real browser: alice creates one, invites bob, writes its
public page and starts a forum thread; bob accepts the invitation and sees
the shared folder, the thread and the page."""

import json

from selenium.webdriver.common.by import By

from browser.test_portal_journey import fill, login, page_text, wait_text


def click(driver, action):
    """The button of the form that posts to the backend action (a form's submit
    button, or a row's one-button form)."""
    driver.find_element(By.CSS_SELECTOR, 'form[action="/cgi-bin/%s.py"] button' % action).click()


def test_create_invite_write_and_the_member_sees_it(browser, appliance_factory):
    app = appliance_factory()
    alice = json.loads(app.cli("user", "add", "alice", "--password", "alice-password",
                               "--json").stdout)
    app.cli("user", "add", "bob", "--password", "bob-password")
    app.start()

    login(browser, app, "alice", "alice-password")
    wait_text(browser, "Welcome, alice.")
    browser.get(app.url + "/cgi-bin/vgrids.py")
    fill(browser, "vgrid_name", "Lab")
    click(browser, "createvgrid")
    wait_text(browser, "Created the VGrid Lab.")
    field = browser.find_element(By.ID, "f-cert_id-invite")
    field.send_keys("bob")
    click(browser, "invitevgridmember")
    wait_text(browser, "Invited bob to Lab")

    browser.get(app.url + "/cgi-bin/vgridpage.py?vgrid_name=Lab&page=public")
    fill(browser, "text", "# About Lab\nWe measure **beams**.")
    click(browser, "editvgridpage")
    wait_text(browser, "Saved the public page of Lab.")

    browser.get(app.url + "/cgi-bin/vgridforum.py?vgrid_name=Lab")
    fill(browser, "msg_subject", "Kickoff")
    fill(browser, "msg_body", "Monday at ten.")
    click(browser, "vgridforumaction")
    wait_text(browser, "Posted.")

    reply = app.curl(alice, "-X", "PUT", "--data-binary", "beam plan\n",
                     "URL/cert_redirect/Lab/plans.txt")  # as MiG's scripts put a file
    assert reply.startswith("0"), reply

    browser.delete_all_cookies()
    login(browser, app, "bob", "bob-password")
    wait_text(browser, "Welcome, bob.")
    browser.get(app.url + "/cgi-bin/vgrids.py")
    wait_text(browser, "Invitations")
    click(browser, "acceptvgridinvite")
    wait_text(browser, "You are a member of Lab.")

    browser.get(app.url + "/cgi-bin/fileman.py")
    wait_text(browser, "Lab")
    browser.get(app.url + "/cgi-bin/fileman.py?path=Lab")
    wait_text(browser, "plans.txt")
    browser.get(app.url + "/cgi-bin/viewfile.py?path=Lab/plans.txt")
    wait_text(browser, "beam plan")

    browser.get(app.url + "/cgi-bin/vgridforum.py?vgrid_name=Lab")
    browser.find_element(By.LINK_TEXT, "Kickoff").click()
    wait_text(browser, "Monday at ten.")

    browser.get(app.url + "/vgrid/Lab/")
    page = browser.find_element(By.ID, "public-page")
    assert page.find_element(By.TAG_NAME, "h2").text == "About Lab"
    assert page.find_element(By.TAG_NAME, "strong").text == "beams"
    assert "We measure beams." in page_text(browser)
