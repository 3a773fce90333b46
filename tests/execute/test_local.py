"""The local executor runs real bash jobs: outputs, limits, cancel, confinement."""

import os
import queue
import tempfile
import subprocess
import time
import uuid

import pytest

from mig.core import jobspec
from mig.core.resources import ExeUnit
from mig.execute.local import LocalExecutor


def run_job(tmp_path, text, files=None, timeout=30, cancel_when=None):
    """Run one job on a fresh local executor: (executor, job id, home, outcome).
    cancel_when(executor, job_id): cancel the job once it says so; then the
    outcome is the queue of reports (which must stay empty)."""
    home_root = tmp_path / "home"
    (home_root / "alice").mkdir(parents=True, exist_ok=True)
    for rel, content in (files or {}).items():
        path = home_root / "alice" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    executor = LocalExecutor(str(tmp_path / "work"), lambda owner: str(home_root / owner))
    job_id = "%d_1_1_2026__0_0_0_test.0" % (uuid.uuid4().int % 10000)
    record = {"JOB_ID": job_id, "OWNER": "alice", "SPEC": jobspec.parse_mrsl(text)}
    unit = ExeUnit(resource="localhost.0", name="local", executor="local")
    results = queue.Queue()
    executor.start(record, unit, lambda jid, outcome: results.put((jid, outcome)))
    if cancel_when is not None:
        deadline = time.time() + timeout
        while not cancel_when(executor, job_id):
            assert time.time() < deadline, "the job never got to where it is cancelled"
            time.sleep(0.02)
        executor.cancel(job_id)
        return executor, job_id, home_root / "alice", results
    try:
        jid, outcome = results.get(timeout=timeout)
    finally:
        executor.shutdown()  # stops the runner processes it started
    assert jid == job_id
    return executor, job_id, home_root / "alice", outcome


def read_output(home, job_id, suffix):
    return (home / "job_output" / job_id / ("%s.%s" % (job_id, suffix))).read_text()


def test_commands_run_in_one_session_with_exit_codes(tmp_path):
    text = ("::EXECUTE::\ncd sub\npwd | grep -c /sub$\nexport X=42\necho $X\nfalse\n"
            "echo \"rc was $?\"\necho 'quoted' >&2\n\n::ENVIRONMENT::\nGREETING=hello world\n\n"
            "::INPUTFILES::\nin/data.txt sub/data.txt\n")
    _, job_id, home, outcome = run_job(tmp_path, text, {"in/data.txt": "x"})
    assert outcome.state == "FINISHED"
    assert outcome.exit_codes == [("cd sub", 0), ("pwd | grep -c /sub$", 0), ("export X=42", 0),
                                  ("echo $X", 0), ("false", 1), ("echo \"rc was $?\"", 0),
                                  ("echo `quoted` >&2", 0)]
    assert read_output(home, job_id, "stdout") == "1\n42\nrc was 1\n"
    assert read_output(home, job_id, "stderr") == "quoted\n"
    status = read_output(home, job_id, "status").splitlines()
    assert status[4] == "false 1"
    io_status = read_output(home, job_id, "io-status")
    assert "get_input_files 0" in io_status and "output_files_missing 0" in io_status


def test_environment_and_exit_in_the_middle(tmp_path):
    text = "::EXECUTE::\necho $GREETING\nexit 3\necho never\n\n::ENVIRONMENT::\nGREETING=hi there\n"
    _, job_id, home, outcome = run_job(tmp_path, text)
    assert read_output(home, job_id, "stdout") == "hi there\n"
    assert outcome.exit_codes == [("echo $GREETING", 0), ("exit 3", 3)]


def test_outputs_are_copied_back_and_missing_ones_counted(tmp_path):
    text = ("::EXECUTE::\necho result > r.txt\nln -s /etc/passwd leak.txt\n\n"
            "::OUTPUTFILES::\nr.txt results/+JOBID+.txt\nnothere.txt\nleak.txt\n")
    _, job_id, home, outcome = run_job(tmp_path, text)
    assert (home / "results" / ("%s.txt" % job_id)).read_text() == "result\n"
    assert not (home / "leak.txt").exists()  # a link leading out of the job folder is refused
    assert "output_files_missing 2" in read_output(home, job_id, "io-status")
    assert not (tmp_path / "work" / job_id).exists()  # the job folder is removed


def test_missing_input_is_reported_not_fatal(tmp_path):
    text = "::EXECUTE::\nls\n\n::INPUTFILES::\nnope.txt\n\n::EXECUTABLES::\ntool.sh\n"
    _, job_id, home, outcome = run_job(tmp_path, text, {"tool.sh": "#!/bin/sh\necho tool\n"})
    assert outcome.state == "FINISHED"
    assert "get_input_files 1" in read_output(home, job_id, "io-status")
    assert "tool.sh" in read_output(home, job_id, "stdout")


def test_cputime_kills_the_whole_process_group(tmp_path):
    marker = "%d.%d" % (30, uuid.uuid4().int % 100000 + 1)
    text = "::EXECUTE::\n(sleep %s &)\nsleep %s\n\n::CPUTIME::\n1\n" % (marker, marker)
    start = time.time()
    _, _, _, outcome = run_job(tmp_path, text)
    assert time.time() - start < 10
    assert outcome.state == "RETRY" and "CPUTIME of 1 s" in outcome.message
    time.sleep(0.3)
    assert subprocess.run(["pgrep", "-f", "sleep %s" % marker]).returncode == 1


def test_memory_limit_is_enforced(tmp_path):
    text = ("::EXECUTE::\npython3 -c \"x = bytearray(300 * 1024 * 1024)\"\necho after\n\n"
            "::MEMORY::\n64\n")
    _, job_id, home, outcome = run_job(tmp_path, text)
    codes = dict(outcome.exit_codes)
    assert codes["python3 -c \"x = bytearray(300 * 1024 * 1024)\""] != 0
    assert "MemoryError" in read_output(home, job_id, "stderr")


def sleeping(marker):
    return subprocess.run(["pgrep", "-f", "sleep %s" % marker], capture_output=True).returncode == 0


def test_cancel_kills_and_reports_nothing(tmp_path):
    """A cancel of a job that runs (its sleep is there) kills it; the cancel of
    one still waiting for its slot is another path (withdraw), not this one."""
    marker = "%d.%d" % (40, uuid.uuid4().int % 100000 + 1)
    executor, job_id, _, reports = run_job(
        tmp_path, "::EXECUTE::\nsleep %s\n" % marker,
        cancel_when=lambda ex, jid: ex.started_at(jid) and sleeping(marker))
    deadline = time.time() + 10
    while executor.running() and time.time() < deadline:
        time.sleep(0.05)
    assert executor.running() == []
    assert not sleeping(marker)  # killed, not left to end
    time.sleep(0.3)
    assert reports.empty()  # a cancelled job reports no outcome
    executor.shutdown()
    assert not (tmp_path / "work" / job_id).exists()


def test_job_cannot_read_server_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MIG_SECRET_SETTING", "do-not-leak")
    _, job_id, home, _ = run_job(tmp_path, "::EXECUTE::\nenv\n")
    out = read_output(home, job_id, "stdout")
    assert "do-not-leak" not in out and "MIG_JOBID=%s" % job_id in out
    assert os.path.basename(job_id)


def test_jobs_run_under_a_uid_of_their_own_when_the_appliance_is_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only meaningful when the appliance runs as root")
    secret = tmp_path / "state-secret.key"
    secret.write_text("top secret")
    os.chmod(secret, 0o600)
    home_root = tmp_path / "home"
    (home_root / "alice").mkdir(parents=True)
    # The work root's parents are closed to others (pytest's 0700 folder):
    # jobs still reach their folder, through the launcher's view of it.
    executor = LocalExecutor(str(tmp_path / "work"), lambda owner: str(home_root / owner))
    record = {"JOB_ID": "1_1_1_2026__0_0_0_t.0", "OWNER": "alice",
              "SPEC": jobspec.parse_mrsl("::EXECUTE::\nid -u\ncat %s\ntouch mine\n"
                                         "cd \"$HOME\" && test -f mine\nid -G\n" % secret)}
    results = queue.Queue()
    executor.start(record, ExeUnit("localhost.0", "local", "local"), lambda j, o: results.put(o))
    outcome = results.get(timeout=30)
    executor.shutdown()
    assert [code for _cmd, code in outcome.exit_codes][:5] == [0, 1, 0, 0, 0]
    out = (home_root / "alice" / "job_output" / record["JOB_ID"] / (record["JOB_ID"] + ".stdout"))
    uid, groups = out.read_text().split("\n")[:2]
    assert executor.identities.owns(int(uid)) and groups == uid  # no other group


def test_verifyfiles_match_outputs(tmp_path):
    text = ("::EXECUTE::\necho hello 42\necho second\n\n::VERIFYFILES::\nok.stdout\nbad.stdout\n"
            "empty.stderr\n")
    files = {"ok.stdout": "hello [0-9]+\nsec.*\n", "bad.stdout": "hello 43\nsecond\n",
             "empty.stderr": ""}
    _, _, _, outcome = run_job(tmp_path, text, files)
    assert outcome.verified.startswith("FAILURE - ")
    assert "stdout: OK" in outcome.verified
    assert "stdout: line 1 does not match 'hello 43'" in outcome.verified
    assert "stderr: OK" in outcome.verified
    files["bad.stdout"] = files["ok.stdout"]
    _, _, _, outcome = run_job(tmp_path, text, files)
    assert outcome.verified == "SUCCESS - stdout: OK stdout: OK stderr: OK"


def test_runners_are_reused_and_stopped(tmp_path):
    home_root = tmp_path / "home"
    (home_root / "alice").mkdir(parents=True)
    work = tempfile.mkdtemp(prefix="mig-test-work-", dir="/tmp")
    executor = LocalExecutor(work, lambda owner: str(home_root / owner))
    results = queue.Queue()
    for n in range(5):
        record = {"JOB_ID": "%d_1_1_2026__0_0_0_t.0" % n, "OWNER": "alice",
                  "SPEC": jobspec.parse_mrsl("::EXECUTE::\necho $$ $BASHPID\n")}
        executor.start(record, ExeUnit("localhost.0", "local", "local"),
                       lambda j, o: results.put(o))
        assert results.get(timeout=30).state == "FINISHED"
    runner_pids = {r.proc.pid for r in executor.runners.all}
    assert len(runner_pids) == 1  # one job at a time: one runner did all five
    executor.shutdown()
    for pid in runner_pids:
        assert not os.path.exists("/proc/%d" % pid) or \
            open("/proc/%d/stat" % pid).read().split()[2] == "Z"
    assert not os.path.exists(work)  # the empty work root is removed at shutdown


def test_jobs_staged_ahead_wait_for_a_free_slot(tmp_path):
    """The local unit takes more jobs than slots (to stage them early), but only
    `slots` of them run at once."""
    home_root = tmp_path / "home"
    (home_root / "alice").mkdir(parents=True)
    executor = LocalExecutor(str(tmp_path / "work"), lambda owner: str(home_root / owner),
                             slots=1)
    unit = ExeUnit(resource="localhost.0", name="local", executor="local", slots=1, staging=2)
    results = queue.Queue()
    text = "::EXECUTE::\ndate +%s.%N\nsleep 0.3\ndate +%s.%N\n"
    ids = ["%d_1_1_2026__0_0_0_stage.0" % n for n in range(3)]
    try:
        for job_id in ids:
            record = {"JOB_ID": job_id, "OWNER": "alice", "SPEC": jobspec.parse_mrsl(text)}
            executor.start(record, unit, lambda jid, outcome: results.put((jid, outcome)))
        outcomes = dict(results.get(timeout=30) for _ in ids)
    finally:
        executor.shutdown()
    assert {o.state for o in outcomes.values()} == {"FINISHED"}
    spans = sorted(tuple(float(t) for t in read_output(home_root / "alice", j, "stdout").split())
                   for j in ids)
    for (_start, end), (next_start, _end) in zip(spans, spans[1:]):
        assert next_start >= end  # never two at once


def test_recovery_after_a_crash_kills_the_jobs_left_running(tmp_path):
    """A new executor on the same work folder (as after kill -9 and a restart)
    stops the jobs the old one left, and removes their folders."""
    home_root = tmp_path / "home"
    (home_root / "alice").mkdir(parents=True)
    work = str(tmp_path / "work")
    old = LocalExecutor(work, lambda owner: str(home_root / owner), slots=2)
    unit = ExeUnit(resource="localhost.0", name="local", executor="local")
    job_id = "1_1_1_2026__0_0_0_crash.0"
    record = {"JOB_ID": job_id, "OWNER": "alice",
              "SPEC": jobspec.parse_mrsl("::EXECUTE::\nsleep 600\n")}
    results = queue.Queue()
    old.start(record, unit, lambda jid, outcome: results.put(outcome))
    try:
        deadline = time.monotonic() + 10
        while not (old.jobs.get(job_id) and old.jobs[job_id].pid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pid = old.jobs[job_id].pid
        os.kill(pid, 0)  # running
        new = LocalExecutor(work, lambda owner: str(home_root / owner), slots=2)
        new.recover_leftovers()
        with pytest.raises(ProcessLookupError):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.02)
        assert not os.path.exists(os.path.join(work, job_id))
        new.shutdown()
    finally:
        old.shutdown()


class BatchReport:
    """A done callback that also takes outcomes in batches, as the grid's does."""

    def __init__(self):
        self.results = queue.Queue()
        self.batches = []

    def __call__(self, job_id, outcome):
        self.many([(job_id, outcome)])

    def many(self, items):
        self.batches.append(len(items))
        for item in items:
            self.results.put(item)


def test_outcomes_are_reported_in_batches_through_many(tmp_path):
    home_root = tmp_path / "home"
    (home_root / "alice").mkdir(parents=True)
    executor = LocalExecutor(str(tmp_path / "work"), lambda owner: str(home_root / owner),
                             slots=2)
    unit = ExeUnit(resource="localhost.0", name="local", executor="local", slots=2)
    report = BatchReport()
    ids = ["%d_1_1_2026__0_0_0_batch.0" % n for n in range(12)]
    try:
        for job_id in ids:
            record = {"JOB_ID": job_id, "OWNER": "alice",
                      "SPEC": jobspec.parse_mrsl("::EXECUTE::\necho +JOBID+\n")}
            executor.start(record, unit, report)
        outcomes = dict(report.results.get(timeout=30) for _ in ids)
    finally:
        executor.shutdown()
    assert sorted(outcomes) == sorted(ids) and sum(report.batches) == len(ids)
    assert {o.state for o in outcomes.values()} == {"FINISHED"}
    for job_id in ids:
        assert read_output(home_root / "alice", job_id, "stdout") == job_id + "\n"


def test_outputs_follow_a_job_output_link_inside_the_home_only(tmp_path):
    home = tmp_path / "home" / "alice"
    (home / "results").mkdir(parents=True)
    os.symlink("results", home / "job_output")  # kept inside the home: followed
    _, job_id, _, outcome = run_job(tmp_path, "::EXECUTE::\necho linked\n")
    assert outcome.state == "FINISHED"
    assert (home / "results" / job_id / ("%s.stdout" % job_id)).read_text() == "linked\n"
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "job_output").unlink()
    os.symlink(str(outside), home / "job_output")  # leading out of the home: refused
    _, job_id, _, outcome = run_job(tmp_path, "::EXECUTE::\necho leaked\n")
    assert outcome.state == "RETRY" and "outside your home" in outcome.message
    assert os.listdir(outside) == []


def test_a_planted_link_among_the_outputs_is_not_written_through(tmp_path):
    """A file named like an output that is a link (made by the user, who knows
    the next job id) must not make the appliance write or read elsewhere."""
    home = tmp_path / "home" / "alice"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    job_id = "1_1_1_2026__0_0_0_planted.0"
    out_dir = home / "job_output" / job_id
    out_dir.mkdir(parents=True)
    os.symlink(str(victim), out_dir / ("%s.io-status" % job_id))
    executor = LocalExecutor(str(tmp_path / "work"), lambda owner: str(tmp_path / "home" / owner))
    results = queue.Queue()
    record = {"JOB_ID": job_id, "OWNER": "alice", "SPEC": jobspec.parse_mrsl("::EXECUTE::\ntrue\n")}
    try:
        executor.start(record, ExeUnit("localhost.0", "local", "local"),
                       lambda jid, outcome: results.put(outcome))
        outcome = results.get(timeout=30)
    finally:
        executor.shutdown()
    assert victim.read_text() == "keep me\n"
    # The link is replaced by the job's own file (renamed over it), not written through.
    status = out_dir / ("%s.io-status" % job_id)
    assert not status.is_symlink() and "output_files_missing 0" in status.read_text()
    assert outcome.state == "FINISHED"
