"""Screenshots of the portal's main pages for the user guide (`make docs`).

Starts a throw-away appliance, gives a demo user a few files and jobs, logs
in with headless Chromium and saves one PNG per page into the folder given
(default docs/screenshots).  Every process it starts is stopped by PID.
"""

import os
import shutil
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from browser_driver import available, start_browser, stop_browser  # noqa: E402
from conftest import ENTRY, Appliance, https_connection, post  # noqa: E402

# (file name, page; None: the job page of the demo job that keeps a file)
PAGES = (("dashboard", "dashboard.py"), ("submit-fields", "submitjob.py"),
         ("submit-text", "submitjob.py?style=textarea"),
         ("submit-files", "submitjob.py?style=files"),
         ("submit-sweep", "submitjob.py?style=sweep"), ("files", "fileman.py"),
         ("jobs", "jobman.py"), ("job", None), ("sweeps", "sweepstatus.py"),
         ("resources", "resources.py"), ("monitor", "monitor.py"),
         ("settings", "settings.py"), ("shell", "shell.py"), ("docs", "docs.py?topic=mrsl"),
         ("downloads", "downloads.py"))

DEMO_JOBS = ("::EXECUTE::\necho hello grid\n\n::JOBNAME::\nhello\n",
             "::EXECUTE::\nuname -a\ndate\n\n::JOBNAME::\nwhere\n",
             "::EXECUTE::\nwc -w notes.txt | tee count.txt\n\n::INPUTFILES::\nnotes.txt\n\n"
             "::OUTPUTFILES::\ncount.txt data/count.txt\n\n::JOBNAME::\ncount\n",
             "::EXECUTE::\ngrep -c grid notes.txt\nexit 3\n\n::INPUTFILES::\nnotes.txt\n\n"
             "::JOBNAME::\nexits-3\n",
             "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n\n::JOBNAME::\nwaits\n")
KEEPER = 2  # the demo job whose page is shown: it keeps a file (OUTPUTFILES)
SWEEP = {"output_format": "txt", "mrsltextarea_0": "::EXECUTE::\necho +x+\n\n::JOBNAME::\n"
         "sweep-+INDEX+\n", "params": "x=1:6", "mode": "product"}


def demo_content(app, user):
    conn = https_connection(app, user)
    try:
        conn.request("PUT", "/cert_redirect/notes.txt", body=b"grid notes for the demo\n",
                     headers={"User-Agent": "curl/8"})
        conn.getresponse().read()
        post(conn, "/cgi-bin/mkdir.py", "output_format=txt&path=data")
        ids = []
        for text in DEMO_JOBS:
            _status, reply = post(conn, "/cgi-bin/textarea.py", urllib.parse.urlencode(
                {"output_format": "txt", "mrsltextarea_0": text}))
            ids += [line.split()[2] for line in reply.splitlines()
                    if line.startswith("textarea") and line.split()[1] == "1"]
        post(conn, "/cgi-bin/sweep.py", urllib.parse.urlencode(SWEEP))
        time.sleep(3)  # let the runnable ones finish
        return ids
    finally:
        conn.close()


def shoot(driver, address, out_dir, name):
    """Open address (None: stay) and save the window as NAME.png."""
    if address is not None:
        driver.get(address)
    time.sleep(0.5)
    path = os.path.join(out_dir, name + ".png")
    driver.save_screenshot(path)
    print("saved %s" % path)


def main(out_dir):
    missing = available()
    if missing:
        sys.exit(missing)
    os.makedirs(out_dir, exist_ok=True)
    state = tempfile.mkdtemp(prefix="mig-shots-")
    app = Appliance([sys.executable, ENTRY], os.path.join(state, "state"))
    driver = None
    try:
        app.cli("user", "add", "demo", "--password", "demo-password")
        user = {"cert": os.path.join(app.state, "users", "demo", "user.crt"),
                "key": os.path.join(app.state, "users", "demo", "user.key")}
        app.start()
        driver = start_browser(1280, 900)
        from selenium.webdriver.common.by import By
        driver.get(app.url + "/login")
        driver.save_screenshot(os.path.join(out_dir, "login.png"))
        driver.find_element(By.NAME, "user").send_keys("demo")
        driver.find_element(By.NAME, "password").send_keys("demo-password")
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        time.sleep(1)
        shoot(driver, app.url + "/cgi-bin/dashboard.py", out_dir, "dashboard-first")
        ids = demo_content(app, user)
        for name, target in PAGES:
            if target is None:
                target = "jobview.py?job_id=%s" % ids[KEEPER]
            shoot(driver, app.url + "/cgi-bin/" + target, out_dir, name)
        # a fields form sent with mistakes comes back with each one marked
        driver.get(app.url + "/cgi-bin/submitjob.py")
        driver.find_element(By.NAME, "CPUTIME").send_keys("ten minutes")
        driver.find_element(By.NAME, "MEMORY").send_keys("-5")
        driver.find_element(By.XPATH, "//button[text()='Submit job']").click()
        time.sleep(1)
        shoot(driver, None, out_dir, "submit-errors")
    finally:
        if driver is not None:
            stop_browser(driver)
        app.stop()
        app.remove_work_folder()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(HERE), "docs",
                                                             "screenshots"))
