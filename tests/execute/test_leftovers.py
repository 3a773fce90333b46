"""After a crash, the sessions of the old runners are stopped, and nothing else."""

import os
import subprocess
import time

from mig.execute.leftovers import forget_runner, kill_leftovers, record_runner


def session(tmp_path):
    """A session leader with two background children, as a runner with a job."""
    proc = subprocess.Popen(["bash", "-c", "sleep 600 & sleep 600 & wait"],
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while len(members(proc.pid)) < 3:
        assert time.monotonic() < deadline, "the test session did not start"
        time.sleep(0.02)
    return proc


def members(sid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry))
    return found


def test_a_recorded_session_is_stopped_whole(tmp_path):
    proc = session(tmp_path)
    try:
        record_runner(str(tmp_path), proc.pid)
        killed = kill_leftovers(str(tmp_path))
        assert len(killed) == 3
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while members(proc.pid):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert os.listdir(tmp_path) == []  # the record is gone too
    finally:
        proc.kill()
        proc.wait()


def test_other_sessions_and_our_own_runners_are_left_alone(tmp_path):
    proc = session(tmp_path)
    mine = session(tmp_path)
    try:
        # the pid now leads a session that started later than the record says
        with open(tmp_path / str(proc.pid), "w") as handle:
            handle.write("1\n")
        record_runner(str(tmp_path), mine.pid)
        assert kill_leftovers(str(tmp_path), keep={mine.pid}) == []
        assert len(members(proc.pid)) == 3 and len(members(mine.pid)) == 3
        assert os.listdir(tmp_path) == [str(mine.pid)]
        # a uid filter: nothing of another user is touched
        assert kill_leftovers(str(tmp_path), uid=os.geteuid() + 1) == []
        assert len(members(mine.pid)) == 3
        forget_runner(str(tmp_path), mine.pid)
        assert os.listdir(tmp_path) == []
    finally:
        for p in (proc, mine):
            os.killpg(p.pid, 9)
            p.wait()
