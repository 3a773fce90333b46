"""The file manager in a real browser: a 200 MB upload shows its progress,
can be cancelled and resumes after a cut; actions done from the Files page
leave you on it with an outcome and the new listing; search, sorting,
downloads, drag and drop, and a share link opened in a fresh anonymous
browser."""

import hashlib
import json
import os

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from test_portal_journey import fill, login, wait_text

PASSWORD = "first-password"
BIG = 200 * 1024 * 1024


@pytest.fixture
def files_portal(appliance_factory):
    """A running appliance and alice (who logs in with a password) with her home."""
    app = appliance_factory()
    alice = json.loads(app.cli("user", "add", "alice", "--password", PASSWORD, "--json").stdout)
    app.start()
    return app, alice


def until(driver, check, timeout=60):
    """Wait until check(driver) is true; a page caught changing is read again."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(WebDriverException,)).until(check)


def text_of(driver, css):
    try:
        return driver.find_element(By.CSS_SELECTOR, css).text
    except WebDriverException:
        return ""


def open_files(browser, app, query=""):
    login(browser, app, "alice", PASSWORD)
    wait_text(browser, "Welcome, alice.", timeout=60)
    browser.get(app.url + "/cgi-bin/fileman.py" + query)
    until(browser, lambda d: d.execute_script(
        "return typeof bindFiles === 'function' && !!document.querySelector('.fm-drop');"))
    browser.execute_script("window.fmMark = 'same page';")  # gone if the page reloads


def listing(browser, kind="filelist"):
    """The Name column of the table data-kind=KIND (Path for search results)."""
    column = 1 if kind == "filelist" else 0
    return [row.find_elements(By.TAG_NAME, "td")[column].text for row in
            browser.find_elements(By.CSS_SELECTOR, "table[data-kind=%s] tbody tr" % kind)]


def still_the_files_page(browser):
    assert browser.current_url.split("?")[0].endswith("/cgi-bin/fileman.py")
    assert browser.execute_script("return window.fmMark;") == "same page"


def outcome_after(browser, act):
    """Run act, then wait for the new outcome (the listing is swapped in after it)."""
    browser.execute_script("var b = document.getElementById('fm-outcome'); if (b) b.remove();")
    act()
    until(browser, lambda d: text_of(d, "#fm-outcome"))
    return text_of(browser, "#fm-outcome")


def select(browser, *paths):
    for path in paths:
        browser.find_element(By.CSS_SELECTOR, "table[data-kind=filelist] input[value='%s']"
                             % path).click()


def press(browser, action, confirm=False):
    browser.find_element(By.CSS_SELECTOR, "button[name=action][value=%s]" % action).click()
    if confirm:
        browser.switch_to.alert.accept()


def upload_row(name):
    """The upload widget's row of a file."""
    return "li.fm-file[data-name='%s']" % name


def row_attribute(browser, name, attribute):
    try:
        return browser.find_element(By.CSS_SELECTOR, upload_row(name)).get_attribute(
            attribute)
    except WebDriverException:
        return None


def big_file(folder):
    """200 MB, sparse with random blocks in it (so a wrong offset shows in the sum)."""
    path = folder / "big.bin"
    with open(path, "wb") as out:
        out.truncate(BIG)
        for offset in range(0, BIG, 10 * 1024 * 1024 + 4096):
            out.seek(offset)
            out.write(os.urandom(64 * 1024))
    return path


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def start_upload(browser, path):
    browser.find_element(By.CSS_SELECTOR, "form[data-upload] input[type=file]").send_keys(
        str(path))
    browser.find_element(By.CSS_SELECTOR, "form[data-upload] button[type=submit]").click()


def done_bytes(browser):
    return int(row_attribute(browser, "big.bin", "data-done") or 0)


def test_a_200_mb_upload_shows_progress_cancels_and_resumes_after_a_cut(browser, files_portal,
                                                                       tmp_path):
    app, alice = files_portal
    source = big_file(tmp_path)
    try:
        open_files(browser, app)
        start_upload(browser, source)
        row = upload_row("big.bin")
        until(browser, lambda d: 5 * 1024 * 1024 < done_bytes(d), timeout=60)
        # busy: the button cannot be pressed again; percent and speed show, and the
        # live text says the percent to screen readers
        assert browser.find_element(By.CSS_SELECTOR, "form[data-upload] button[type=submit]") \
            .get_property("disabled") is True
        assert text_of(browser, row + " .fm-pct").endswith("%")
        assert text_of(browser, row + " .fm-speed").endswith("/s")
        status = browser.find_element(By.CSS_SELECTOR, "form[data-upload] [role=status]")
        assert status.text.startswith("Uploading file 1 of 1: ") and status.text.endswith("%")
        # cancel it
        until(browser, lambda d: 12 * 1024 * 1024 < done_bytes(d), timeout=60)
        browser.find_element(By.CSS_SELECTOR, row + " .fm-cancel").click()
        until(browser, lambda d: row_attribute(d, "big.bin", "data-state") == "cancelled")
        assert text_of(browser, row + " .fm-note") == \
            "cancelled; upload the same file again to resume"
        assert browser.find_element(By.CSS_SELECTOR, "form[data-upload] button[type=submit]") \
            .get_property("disabled") is False
        assert "big.bin" not in listing(browser)
        cache = os.path.join(alice["home"], ".upload-cache")
        kept = sum(os.path.getsize(os.path.join(cache, n)) for n in os.listdir(cache))
        assert kept >= 8 * 1024 * 1024  # the parts that arrived stay for a resume

        # again: it resumes where the cancelled one stopped; then the connection is cut
        start_upload(browser, source)
        until(browser, lambda d: row_attribute(d, "big.bin", "data-resumed-at"))
        resumed = int(row_attribute(browser, "big.bin", "data-resumed-at"))
        assert resumed == kept
        assert text_of(browser, row + " .fm-note").startswith(
            "resumed at %.1f MB" % (resumed / 1024.0 / 1024.0))
        until(browser, lambda d: done_bytes(d) > resumed + 16 * 1024 * 1024, timeout=60)
        browser.set_network_conditions(offline=True, latency=0, download_throughput=-1,
                                       upload_throughput=-1)
        until(browser, lambda d: row_attribute(d, "big.bin", "data-state") == "failed",
              timeout=60)
        assert text_of(browser, row + " .fm-note").startswith("stopped: ")
        browser.delete_network_conditions()

        # a third time: resumed again after the cut, and this time to the end
        start_upload(browser, source)
        until(browser, lambda d: (row_attribute(d, "big.bin", "data-resumed-at") or "0")
              not in ("0", str(resumed)))
        assert int(row_attribute(browser, "big.bin", "data-resumed-at")) > resumed
        until(browser, lambda d: row_attribute(d, "big.bin", "data-state") == "done",
              timeout=240)
        until(browser, lambda d: "big.bin" in listing(d))
        assert text_of(browser, "#fm-outcome") == "big.bin: stored as big.bin"
        sizes = {r.find_elements(By.TAG_NAME, "td")[1].text: r.find_elements(
            By.TAG_NAME, "td")[2].text for r in browser.find_elements(
            By.CSS_SELECTOR, "table[data-kind=filelist] tbody tr")}
        assert sizes["big.bin"] == "200.0 MB"
        still_the_files_page(browser)
        assert sha256(os.path.join(alice["home"], "big.bin")) == sha256(source)
        assert os.listdir(cache) == []
    finally:
        source.unlink()
        stored = os.path.join(alice["home"], "big.bin")
        if os.path.exists(stored):
            os.unlink(stored)


def write(alice, rel, data):
    path = os.path.join(alice["home"], rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(data)


def test_actions_leave_you_on_the_files_page_with_an_outcome_and_the_new_listing(
        browser, files_portal):
    app, alice = files_portal
    write(alice, "a.txt", "A")
    write(alice, "b.txt", "B")
    write(alice, "old.txt", "old")
    open_files(browser, app)

    # a new folder
    browser.find_element(By.ID, "f-path").send_keys("newdir")
    said = outcome_after(browser, lambda: browser.find_element(
        By.XPATH, "//button[text()='Create folder']").click())
    assert said == "created directory newdir"
    until(browser, lambda d: "newdir/" in listing(d))
    still_the_files_page(browser)
    # the same again is refused: the name stays typed, the problem under it
    browser.find_element(By.ID, "f-path").send_keys("newdir")
    outcome_after(browser, lambda: browser.find_element(
        By.XPATH, "//button[text()='Create folder']").click())
    until(browser, lambda d: text_of(d, "#fm-field-error"))
    field = browser.find_element(By.ID, "f-path")
    assert field.get_attribute("value") == "newdir"
    assert field.get_attribute("aria-invalid") == "true"
    assert "newdir" in text_of(browser, "#f-path + #fm-field-error")
    still_the_files_page(browser)

    # rename in the row
    browser.find_element(By.XPATH, "//table[@data-kind='filelist']//tr[td/a[text()='b.txt']]"
                                   "//a[text()='Rename']").click()
    box = browser.find_element(By.CSS_SELECTOR, ".fm-rename input")
    box.clear()
    box.send_keys("renamed.txt")
    said = outcome_after(browser, lambda: browser.find_element(
        By.XPATH, "//span[@class='fm-rename']/button[text()='Save']").click())
    assert said == "b.txt: moved to renamed.txt"
    until(browser, lambda d: "renamed.txt" in listing(d) and "b.txt" not in listing(d))

    # delete (to Trash)
    select(browser, "old.txt")
    said = outcome_after(browser, lambda: press(browser, "delete", confirm=True))
    assert said == "old.txt: moved to Trash"
    until(browser, lambda d: "old.txt" not in listing(d))

    # pack two files into an archive named in the destination box
    select(browser, "a.txt", "renamed.txt")
    fill(browser, "dst", "bundle.zip")
    said = outcome_after(browser, lambda: press(browser, "pack"))
    assert said == "a.txt: packed into bundle.zip; renamed.txt: packed into bundle.zip"
    until(browser, lambda d: "bundle.zip" in listing(d))

    # unpack it again after the originals went to Trash
    os.unlink(os.path.join(alice["home"], "a.txt"))
    select(browser, "bundle.zip")
    said = outcome_after(browser, lambda: press(browser, "unpack"))
    assert said == "bundle.zip: unpacked 2 files into your home"
    until(browser, lambda d: "a.txt" in listing(d))
    still_the_files_page(browser)

    # restore from the trash
    browser.get(app.url + "/cgi-bin/fileman.py?path=Trash")
    until(browser, lambda d: "old.txt" in listing(d))
    browser.execute_script("window.fmMark = 'same page';")
    select(browser, "Trash/old.txt")
    said = outcome_after(browser, lambda: press(browser, "restore"))
    assert said == "Trash/old.txt: restored to old.txt"
    until(browser, lambda d: "old.txt" not in listing(d))
    still_the_files_page(browser)
    assert open(os.path.join(alice["home"], "old.txt")).read() == "old"


def test_search_sorting_download_and_drop(browser, files_portal, tmp_path):
    app, alice = files_portal
    write(alice, "docs/plan.txt", "the secret word is marmalade\n")
    write(alice, "docs/marmalade-recipe.md", "oranges\n")
    write(alice, "small.txt", "x")
    write(alice, "large.txt", "y" * 5000)
    write(alice, "medium.txt", "z" * 2000)
    os.utime(os.path.join(alice["home"], "large.txt"), (1000000000, 1000000000))
    open_files(browser, app)

    # sorting by size, name and date
    browser.find_element(By.PARTIAL_LINK_TEXT, "Sort by size").click()
    until(browser, lambda d: listing(d) == ["docs/", "small.txt", "medium.txt", "large.txt"])
    browser.find_element(By.PARTIAL_LINK_TEXT, "Sort by size").click()  # round
    until(browser, lambda d: listing(d) == ["docs/", "large.txt", "medium.txt", "small.txt"])
    browser.find_element(By.PARTIAL_LINK_TEXT, "Sort by name").click()
    until(browser, lambda d: listing(d) == ["docs/", "large.txt", "medium.txt", "small.txt"])
    browser.find_element(By.PARTIAL_LINK_TEXT, "Sort by name").click()
    until(browser, lambda d: listing(d) == ["docs/", "small.txt", "medium.txt", "large.txt"])
    browser.find_element(By.PARTIAL_LINK_TEXT, "Sort by modified").click()
    until(browser, lambda d: listing(d)[:2] == ["docs/", "large.txt"])
    assert browser.find_element(By.XPATH, "//table[@data-kind='filelist']//tr[td/a[text()="
                                          "'large.txt']]/td[3]").text == "4.9 KB"

    # search by name, then by content
    fill(browser, "search", "marmalade")
    browser.find_element(By.XPATH, "//button[text()='Search']").click()
    until(browser, lambda d: listing(d, "filesearch") == ["docs/marmalade-recipe.md"])
    fill(browser, "search", "MARMALADE")
    browser.find_element(By.ID, "f-search-content").click()
    browser.find_element(By.XPATH, "//button[text()='Search']").click()
    until(browser, lambda d: listing(d, "filesearch") == ["docs/marmalade-recipe.md",
                                                          "docs/plan.txt"])
    assert [r.find_elements(By.TAG_NAME, "td")[3].text for r in browser.find_elements(
        By.CSS_SELECTOR, "table[data-kind=filesearch] tbody tr")] == ["name", "content"]

    # Download downloads (a file arrives in the download folder)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(downloads)})
    browser.get(app.url + "/cgi-bin/fileman.py")
    browser.find_element(By.XPATH, "//table[@data-kind='filelist']//tr[td/a[text()="
                                   "'small.txt']]//a[text()='Download']").click()
    until(browser, lambda d: os.path.exists(downloads / "small.txt"))
    until(browser, lambda d: (downloads / "small.txt").read_text() == "x")

    # drag and drop a file onto the upload form
    until(browser, lambda d: d.execute_script("return !!document.querySelector('.fm-drop');"))
    browser.execute_script(
        "var dt = new DataTransfer();"
        "dt.items.add(new File(['dropped in\\n'], 'dropped.txt', {type: 'text/plain'}));"
        "var form = document.querySelector('form[data-upload]');"
        "form.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true,"
        " cancelable: true}));"
        "form.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,"
        " cancelable: true}));")
    until(browser, lambda d: row_attribute(d, "dropped.txt", "data-state") == "done")
    until(browser, lambda d: "dropped.txt" in listing(d))
    assert open(os.path.join(alice["home"], "dropped.txt")).read() == "dropped in\n"


def test_a_share_link_made_in_the_portal_downloads_in_a_fresh_anonymous_browser(
        browser, files_portal):
    from browser_driver import start_browser, stop_browser
    app, alice = files_portal
    write(alice, "report.txt", "quarterly numbers\n")
    open_files(browser, app)
    select(browser, "report.txt")
    said = outcome_after(browser, lambda: press(browser, "share"))
    assert said.startswith("report.txt: read-only share link /share_redirect/")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR,
                                             "table[data-kind=sharelinks] a.fm-share-url"))
    link = browser.find_element(By.CSS_SELECTOR, "table[data-kind=sharelinks] a.fm-share-url")
    address = link.text
    assert address.startswith(app.url + "/share_redirect/") and address.endswith("/report.txt")
    assert browser.find_element(By.CSS_SELECTOR, "table[data-kind=sharelinks] button.fm-copy")
    stranger = start_browser()
    try:
        stranger.get(address)
        until(stranger, lambda d: d.find_element(By.TAG_NAME, "body").text ==
              "quarterly numbers")
        # revoked in the portal: the address is gone
        said = outcome_after(browser, lambda: (browser.find_element(
            By.XPATH, "//table[@data-kind='sharelinks']//button[text()='Revoke']").click(),
            browser.switch_to.alert.accept()))
        assert said.startswith("report.txt: share link ") and said.endswith(" revoked")
        until(browser, lambda d: not d.find_elements(By.CSS_SELECTOR,
                                                     "table[data-kind=sharelinks] tbody tr"))
        still_the_files_page(browser)
        stranger.get(address)
        until(stranger, lambda d: "no such share link" in d.find_element(
            By.TAG_NAME, "body").text)
    finally:
        stop_browser(stranger)


def test_the_submit_page_uploads_with_the_same_widget(browser, files_portal, tmp_path):
    app, _alice = files_portal
    job = tmp_path / "hello.mRSL"
    job.write_text("::EXECUTE::\necho hi\n")
    login(browser, app, "alice", PASSWORD)
    wait_text(browser, "Welcome, alice.")
    browser.get(app.url + "/cgi-bin/submitjob.py?style=files")
    until(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "form[data-upload] .fm-drop"))
    start_upload(browser, job)
    until(browser, lambda d: row_attribute(d, "hello.mRSL", "data-state") == "done")
    until(browser, lambda d: text_of(d, "#fm-outcome"))
    lines = text_of(browser, "#fm-outcome").splitlines()
    assert lines[0] == "hello.mRSL: stored as hello.mRSL"
    assert lines[1].startswith("hello.mRSL: submitted as job "), lines
