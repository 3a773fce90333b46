"""Headless Chromium driven by Selenium, for the browser tests and `make docs`.

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver so that nothing is
downloaded; the appliance's own CA is not installed, so certificate errors
are ignored for this test browser only.
"""

import os
import tempfile

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def available():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: pip install selenium (make test installs it)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return "%s is missing: apt-get install chromium chromium-driver" % path
    return None


def start_browser(width=1280, height=900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="mig-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--ignore-certificate-errors", "--user-data-dir=%s" % profile,
                 "--window-size=%d,%d" % (width, height)):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.mig_profile = profile
    return driver


def stop_browser(driver):
    import shutil
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "mig_profile", ""), ignore_errors=True)
