"""Form parsing and the MiG txt layout, which scripts parse."""

from mig.render import objects as O
from mig.render import txt
from mig.web.request import parse_form, parse_json_fields


def test_form_splits_on_semicolon_and_ampersand_and_drops_blanks():
    body = "_=certauth;output_format=txt&flags=&path=dir1&path=f%2A.txt&msg=a+b&amp;x=1"
    assert parse_form(body) == {"_": ["certauth"], "output_format": ["txt"],
                                "path": ["dir1", "f*.txt"], "msg": ["a b"], "x": ["1"]}


def test_json_fields_become_lists():
    assert parse_json_fields(b'{"job_id": ["a", "b"], "flags": "", "max_jobs": 5}') == {
        "job_id": ["a", "b"], "max_jobs": ["5"]}


def test_txt_layout_first_lines_and_objects():
    objects = [O.header("mig unsorted  job status"), O.error("bad"), O.warning("careful"),
               O.file_not_found("x.txt"),
               O.table("submitstatuslist", ("File", "Status", "Job ID", "Message"),
                       [("a.mRSL", True, "1_2_3", ""), ("long-name.mRSL", 0, "", "oops")])]
    text = txt.render(objects, 0, "OK", "Job Status", 0.0123)
    assert text.splitlines()[:8] == [
        "Exit code: 0 Description OK (done in 0.012s)", "Title: Job Status", "",
        "___MIG UNSORTED  JOB STATUS___", "", "** bad **", "! careful !",
        "x.txt: No such file or directory"]
    assert "File            Status  Job ID  Message" in text
    assert "a.mRSL               1   1_2_3" in text


def test_txt_job_block():
    job = {"job_id": "1_2", "status": "FINISHED", "received_timestamp": "Sun Nov 22 01:00:00 2026",
           "exit_codes": [["echo hi", 0]], "waiting": []}
    text = txt.render([O.job_list([job])], 0, "OK", "Job Status", 0)
    assert "Job Id: 1_2\nStatus: FINISHED\nReceived: Sun Nov 22 01:00:00 2026\n" in text
    assert "Exit status 1: 0 (command: echo hi)" in text
