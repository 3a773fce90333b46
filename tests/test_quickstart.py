"""The quickstart's shell examples, run in order as a newcomer would run them."""

import json
import os
import re
import subprocess
import sys

from conftest import ENTRY, ROOT, exit_code, require_tool, wait_for

QUICKSTART = os.path.join(ROOT, "docs", "quickstart.md")


def blocks():
    """(kind, text) of the ```sh and ```mrsl blocks, in document order."""
    return re.findall(r"^```(sh|mrsl)\n(.*?)^```", open(QUICKSTART, encoding="utf-8").read(),
                      re.S | re.M)


def test_quickstart_examples_run(appliance_factory, tmp_path):
    require_tool("curl", "apt-get install curl")
    app = appliance_factory(state=str(tmp_path / "mig-state"))
    app.cli("user", "list")
    app.start()
    found = blocks()
    assert len([b for b in found if b[0] == "sh"]) >= 8
    variables, job_id, token = "", None, None
    for kind, text in found:
        if kind == "mrsl":
            (tmp_path / "job.mRSL").write_text(text)
            continue
        text = text.replace("python3 migappliance.py", "%s %s" % (sys.executable, ENTRY))
        text = text.replace("https://127.0.0.1:8443", app.url)
        if text.startswith("CA="):
            variables = text
            continue
        cancelled = None
        if "jobaction" in text:  # cancel a job that still waits (no SPARC resource here)
            cancelled = re.search(r"^textarea\s+1\s+(\S+)", run(variables, (
                "curl -s --cacert $CA --cert $CRT --key $KEY --data output_format=txt "
                "--data-urlencode mrsltextarea_0=\"$(printf '::EXECUTE::\\ntrue\\n\\n"
                "::ARCHITECTURE::\\nSPARC\\n')\" $URL/cgi-bin/textarea.py"), tmp_path),
                re.M).group(1)
            text = text.replace("JOBID", cancelled)
        if "JOBID" in text:
            assert job_id, "a JOBID example comes before any submission"
            if "job_output" in text:
                wait_for(lambda: "Status: FINISHED" in run(variables, (
                    "curl -s --cacert $CA --cert $CRT --key $KEY --data output_format=txt "
                    "--data job_id=%s $URL/cgi-bin/jobstatus.py" % job_id), tmp_path), 60,
                    what="the quickstart job to finish")
            text = text.replace("JOBID", job_id)
        if "TOKEN" in text:
            text = text.replace("TOKEN", token)
        out = run(variables, text, tmp_path)
        if "user add" in text:
            token = json.loads(out)["token"]
        elif "cert_redirect/job_output" in text:
            assert out == "2 in.txt\n", out  # wc -w of 'hello world'
        elif out.startswith("Exit code"):
            assert exit_code(out) == 0, (text, out)
            if cancelled:
                assert "Status: CANCELED" in run(variables, (
                    "curl -s --cacert $CA --cert $CRT --key $KEY --data output_format=txt "
                    "--data job_id=%s $URL/cgi-bin/jobstatus.py" % cancelled), tmp_path)
            found_ids = re.findall(r"^(?:textarea|job\.mRSL)\s+1\s+(\S+)", out, re.M)
            job_id = job_id or (found_ids[0] if found_ids else None)
        else:
            assert out.splitlines()[-1] == "0" or out.startswith("0\n"), (text, out)
    assert job_id and token


def run(variables, text, cwd):
    script = "set -e\n%s\nURL=%s\n%s\n" % (variables, re.search(r"URL=(\S+)", variables).group(1)
                                           if variables else "", text)
    result = subprocess.run(["bash", "-c", script], cwd=str(cwd), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, (text, result.stderr)
    return result.stdout
