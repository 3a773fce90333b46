"""The Python client, with the same test code against a live appliance and in
local mode (the appliance's engine in the test process, no server)."""

import json

import pytest

from mig import miginterface
from mig.client import GridError, NotFound, connect


@pytest.fixture(params=["remote", "local"])
def grid(request, appliance_factory, tmp_path):
    if request.param == "remote":
        app = appliance_factory()
        alice = app.add_user("alice")
        app.start()
        client = connect(app.url, token=alice["token"], ca=app.ca)
    else:
        client = connect(local=True, folder=str(tmp_path / "local-state"))
    try:
        yield client
    finally:
        client.close()
        if request.param == "local":
            import shutil
            from mig import config
            shutil.rmtree(config.load(str(tmp_path / "local-state")).work_root, ignore_errors=True)


def test_jobs_from_string_dict_and_file(grid, tmp_path):
    first = grid.submit("::EXECUTE::\necho from text +JOBID+\n")
    second = grid.submit({"EXECUTE": ["echo from dict", "exit 3"], "JOBNAME": "dicty"})
    job_file = tmp_path / "job.mRSL"
    job_file.write_text("::EXECUTE::\necho from file\n")
    third = grid.submit(str(job_file))
    assert grid.wait(first, timeout=60)["status"] == "FINISHED"
    assert grid.output(first) == "from text %s\n" % first
    status = grid.wait(second, timeout=60)
    assert status["status"] == "FINISHED" and status["name"] == "dicty"
    assert [code for _cmd, code in status["exit_codes"]] == [0, 3]
    assert grid.wait(third, timeout=60) and grid.output(third) == "from file\n"
    outputs = grid.outputs(first)
    assert outputs["status"].startswith("echo from text") and "get_input_files 0" in outputs["io-status"]


def test_files_cancel_resubmit_and_errors(grid, tmp_path):
    local = tmp_path / "data.txt"
    local.write_text("alpha\nbeta\n")
    grid.mkdir("in/deep", parents=True)
    grid.upload(str(local), "in/deep/data.txt")
    assert grid.ls("in/deep") == ["data.txt"] and grid.exists("in/deep/data.txt")
    job = grid.submit("::EXECUTE::\nsort -r data.txt\n\n::INPUTFILES::\nin/deep/data.txt data.txt\n")
    grid.wait(job, timeout=60)
    assert grid.output(job) == "beta\nalpha\n"
    assert grid.download("in/deep/data.txt", str(tmp_path / "back.txt")) == b"alpha\nbeta\n"
    grid.rm("in", recursive=True)
    assert not grid.exists("in")
    with pytest.raises(NotFound):
        grid.download("no/such/file.txt")
    with pytest.raises(GridError) as bad:
        grid.submit("::EXECUTE::\necho hi\n\n::CPUTIME::\nlots\n")
    assert bad.value.exit_code == 100 and "CPUTIME" in bad.value.message
    waiting = grid.submit("::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n")
    assert grid.freeze(waiting) == "FROZEN" and grid.thaw(waiting) == "QUEUED"
    assert grid.cancel(waiting) == "CANCELED"
    again = grid.resubmit(job)
    assert again != job and grid.wait(again, timeout=60)["status"] == "FINISHED"
    with pytest.raises(GridError):
        grid.cancel(job)  # finished jobs cannot be cancelled


def test_sweep_and_changes(grid):
    now, _ = grid.changes(0)
    sweep = grid.sweep("::EXECUTE::\necho +x+\n", {"x": ["a", "b", "c"]})
    deadline_ok = False
    for _ in range(300):
        status = grid.sweep_status(sweep)
        if status["FINISHED"] == 3:
            deadline_ok = True
            break
        import time
        time.sleep(0.2)
    assert deadline_ok, status
    later, changed = grid.changes(now)
    assert len([j for j, state in changed if state == "FINISHED"]) >= 3 and later >= now


def test_miginterface_layer(grid, tmp_path):
    miginterface.configure(grid=grid)
    source = tmp_path / "numbers.txt"
    source.write_text("3\n1\n2\n")
    job_id = miginterface.create_job(["sort -n numbers.txt > sorted.txt", "cat sorted.txt"],
                                     input_files=[str(source)], output_files=["sorted.txt"],
                                     resource_specifications={"cputime": 60}, name="legacy")
    for _ in range(300):
        if miginterface.job_finished(job_id):
            break
        import time
        time.sleep(0.2)
    assert miginterface.job_status(job_id) == "FINISHED"
    assert miginterface.job_output(job_id) == "1\n2\n3\n"
    assert miginterface.path_exists("sorted.txt") and "sorted.txt" in miginterface.ls(".")
    local = miginterface.get_file("sorted.txt", str(tmp_path / "got.txt"))
    assert open(local).read() == "1\n2\n3\n"
    assert miginterface.test_connection()
    miginterface.configure(grid=None)


def test_conf_file_is_read(tmp_path):
    conf = tmp_path / "miguser.conf"
    conf.write_text("# a comment\nmigserver https://grid.example:8443\ncertfile ~/x.crt\n")
    values = miginterface.read_conf(str(conf))
    assert values["migserver"] == "https://grid.example:8443"
    assert values["certfile"].endswith("/x.crt") and not values["certfile"].startswith("~")
    assert json.dumps(values)


def test_client_is_downloadable_and_works_as_one_file(appliance_factory, tmp_path):
    """The Downloads page serves client.py; that single file is a working client."""
    import subprocess
    import sys
    app = appliance_factory()
    alice = app.add_user("alice")
    app.start()
    data = app.curl(alice, "--fail", "URL/cgi-bin/download.py?what=client")
    (tmp_path / "client.py").write_text(data)
    program = ("import client\n"
               "g = client.connect(%r, token=%r, ca=%r)\n"
               "j = g.submit('::EXECUTE::\\necho standalone\\n')\n"
               "g.wait(j, timeout=60)\n"
               "print(g.output(j), end='')\n" % (app.url, alice["token"], app.ca))
    result = subprocess.run([sys.executable, "-c", program], cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "standalone\n"
