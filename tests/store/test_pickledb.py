"""mig.store.pickledb: atomic, durable, locked pickle records on real files,
with real threads, real processes and real SIGKILLs."""

import json
import multiprocessing
import os
import pickle
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from mig.errors import StateTooNew, SystemFailure
from mig.store import pickledb
from mig.store.pickledb import PickleStore, atomic_write_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def temp_files(folder):
    found = []
    for dirpath, _dirs, names in os.walk(folder):
        found += [os.path.join(dirpath, n) for n in names if n.startswith(".tmp-")]
    return found


# ------------------------------------------------------------------- round trips

def test_write_read_round_trip(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    values = {
        "jobs/alice/1_2_3": {"JOB_ID": "1_2_3", "SPEC": {"EXECUTE": ["echo"]}, "T": 1.5},
        "system/counter": 42,
        "a/b/c/d": [("x", b"\x00\xff"), None, {1, 2}],
        "top": "text \u00e6\u00f8\u00e5",
    }
    for relpath, value in values.items():
        store.write(relpath, value)
    for relpath, value in values.items():
        assert store.read(relpath) == value
        assert store.exists(relpath)
    # a second store on the same folder reads the same
    other = PickleStore(str(tmp_path / "s"))
    for relpath, value in values.items():
        assert other.read(relpath) == value
    store.write("system/counter", 43, durable=False)
    assert other.read("system/counter") == 43
    assert store.path("jobs/alice/1_2_3") == str(tmp_path / "s" / "jobs" / "alice" /
                                                 "1_2_3.pickle")


def test_read_missing_and_default(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    with pytest.raises(FileNotFoundError):
        store.read("nope")
    assert store.read("nope", None) is None
    assert store.read("nope/deeper", {"d": 1}) == {"d": 1}
    assert not store.exists("nope")
    assert store.version("nope") is None


def test_delete_and_version(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    store.write("r", 1)
    first = store.version("r")
    # a second write of the same size in the same clock tick is still seen:
    # caches keyed on the version alone (users, share links) must reload
    store.write("r", 2)
    second = store.version("r")
    assert second != first and second[1] == first[1]
    os.utime(store.path("r"), ns=(first[2], first[2]))  # even with the old mtime
    assert store.version("r") != first
    store.delete("r")
    assert not store.exists("r")
    store.delete("r")  # deleting twice is fine
    assert store.version("r") is None


def test_folder_modes(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    store.write("jobs/alice/x", 1)
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(store.root, "jobs", "alice")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path("jobs/alice/x")).st_mode) == 0o600
    os.chmod(store.root, 0o755)
    PickleStore(store.root)
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700


# --------------------------------------------------------------- atomic writes

def test_atomic_write_leaves_no_temp_files(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    for i in range(30):
        store.write("jobs/u%d/r%d" % (i % 3, i), {"i": i}, durable=bool(i % 2))
        store.update("counter", lambda old: (old or 0) + 1)
    assert temp_files(store.root) == []
    assert sorted(os.listdir(store.root)) == ["counter.pickle", "jobs", "locks", "schema.json"]
    path = str(tmp_path / "plain.bin")
    atomic_write_bytes(path, b"x" * 100000)
    atomic_write_bytes(path, bytearray(b"yz"), durable=False, mode=0o644)
    with open(path, "rb") as handle:
        assert handle.read() == b"yz"
    assert sorted(os.listdir(tmp_path)) == ["plain.bin", "s"]


def test_atomic_write_failure_raises_system_failure_and_cleans_up(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(SystemFailure) as info:
        atomic_write_bytes(str(target), b"data")
    assert "could not write target" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["target"]
    assert (target / "inside").read_text() == "keep"


def test_atomic_write_into_missing_folder_raises_system_failure(tmp_path):
    with pytest.raises(SystemFailure):
        atomic_write_bytes(str(tmp_path / "missing" / "f"), b"data")


def test_write_unpicklable_keeps_old_record(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    store.write("r", {"v": 1})
    with pytest.raises(Exception):
        store.write("r", {"v": lambda: 2})
    assert store.read("r") == {"v": 1}
    assert temp_files(store.root) == []


# ----------------------------------------------------------------------- schema

def test_schema_marker_written(tmp_path):
    root = tmp_path / "s"
    PickleStore(str(root))
    assert json.loads((root / "schema.json").read_text()) == {"schema":
                                                              pickledb.SCHEMA_VERSION}
    # a folder of this schema opens again and keeps its marker
    PickleStore(str(root))
    assert json.loads((root / "schema.json").read_text()) == {"schema":
                                                              pickledb.SCHEMA_VERSION}


def test_newer_schema_refused_naming_the_folder(tmp_path):
    root = tmp_path / "state-from-future"
    root.mkdir()
    (root / "schema.json").write_text(json.dumps({"schema": pickledb.SCHEMA_VERSION + 1}))
    with pytest.raises(StateTooNew) as info:
        PickleStore(str(root))
    message = str(info.value)
    assert str(root) in message
    assert "schema 2" in message and "up to 1" in message
    assert isinstance(info.value, SystemFailure)
    # the marker is not rewritten by the refused open
    assert json.loads((root / "schema.json").read_text()) == {"schema": 2}


def test_same_or_older_schema_accepted(tmp_path):
    for version in (0, 1):
        root = tmp_path / ("s%d" % version)
        root.mkdir()
        (root / "schema.json").write_text(json.dumps({"schema": version}))
        PickleStore(str(root)).write("x", version)


# ------------------------------------------------------------- records, folders

def test_records_and_folders_listing(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    for owner in ("bob", "alice", "carol"):
        for n in range(3):
            store.write("jobs/%s/job%d" % (owner, n), n)
    store.write("jobs/toplevel", 1)
    (tmp_path / "s" / "jobs" / "alice" / ".tmp-job0.pickle-dead").write_bytes(b"torn")
    (tmp_path / "s" / "jobs" / "alice" / "notes.txt").write_text("not a record")
    (tmp_path / "s" / "jobs" / "alice" / "sub").mkdir()
    assert store.folders("jobs") == ["alice", "bob", "carol"]
    assert store.folders("jobs/alice") == ["sub"]
    assert store.folders("missing") == []
    listed = sorted(store.records("jobs/alice"))
    assert listed == [("job%d" % n, store.path("jobs/alice/job%d" % n)) for n in range(3)]
    assert [name for name, _ in store.records("jobs")] == ["toplevel"]
    assert list(store.records("missing/folder")) == []
    for name, path in store.records("jobs/bob"):
        assert store.read_file(path) == int(name[-1])
    assert store.ensure_folder("new/folder") == os.path.join(store.root, "new", "folder")
    assert store.folders("new") == ["folder"]


# ------------------------------------------------------------------ concurrency

def _increment(old):
    value = dict(old)
    value["n"] += 1
    value["seen"] = value["seen"] + [value["n"]]
    return value


def test_update_under_concurrent_threads_loses_nothing(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    store.write("counter", {"n": 0, "seen": []})
    errors = []

    def worker():
        try:
            mine = PickleStore(store.root)  # separate instances, same folder
            for _ in range(40):
                mine.update("counter", _increment)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    final = store.read("counter")
    assert final["n"] == 240
    assert final["seen"] == list(range(1, 241))


def test_update_returns_new_value_and_uses_default(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    assert store.update("c", lambda old: old + [1], default=[]) == [1]
    assert store.update("c", lambda old: old + [2], default=[]) == [1, 2]
    assert store.read("c") == [1, 2]


def test_update_exception_keeps_record_and_releases_lock(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    store.write("c", 5)

    def boom(old):
        raise RuntimeError("no")
    with pytest.raises(RuntimeError):
        store.update("c", boom)
    assert store.read("c") == 5
    assert store.update("c", lambda old: old + 1) == 6


def _process_worker(root, count):
    store = PickleStore(root)
    for _ in range(count):
        store.update("counter", lambda old: old + 1, default=0)


def test_update_under_concurrent_processes_loses_nothing(tmp_path):
    root = str(tmp_path / "s")
    PickleStore(root).write("counter", 0)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_worker, args=(root, 50)) for _ in range(4)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join(60)
            assert proc.exitcode == 0
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert PickleStore(root).read("counter") == 200


def test_lock_is_exclusive_across_processes(tmp_path):
    store = PickleStore(str(tmp_path / "s"))
    script = ("import sys, time; sys.path.insert(0, %r)\n"
              "from mig.store.pickledb import PickleStore\n"
              "s = PickleStore(%r)\n"
              "t = time.time()\n"
              "with s.lock('L'):\n"
              "    print(round(time.time() - t, 3))\n" % (ROOT, store.root))
    with store.lock("L"):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                text=True)
        time.sleep(0.6)
        assert proc.poll() is None  # still waiting for the lock
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert float(out) >= 0.3


# ------------------------------------------------------------------------ kill -9

WRITER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from mig.store.pickledb import PickleStore
store = PickleStore(sys.argv[2])
size = int(sys.argv[3])
i = int(sys.argv[4])
while True:
    store.write("victim", {"i": i, "blob": bytes([i % 256]) * size}, durable=bool(i % 2))
    if i == int(sys.argv[4]):
        print("ready", flush=True)
    i += 1
"""


def test_kill_9_during_writes_never_leaves_a_torn_record(tmp_path):
    root = str(tmp_path / "s")
    store = PickleStore(root)
    size = 2 * 1024 * 1024
    rnd = random.Random(9)
    start = 0
    seen = []
    for _round in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, ROOT, root, str(size),
                                 str(start)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rnd.uniform(0, 0.05))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        with open(store.path("victim"), "rb") as handle:
            record = pickle.load(handle)
        assert set(record) == {"i", "blob"}
        assert record["i"] >= start
        assert record["blob"] == bytes([record["i"] % 256]) * size
        seen.append(record["i"])
        start = record["i"] + 1
        # a torn temp file may remain, but it is never listed as a record
        assert [name for name, _ in store.records("")] == ["victim"]
    assert seen == sorted(seen)


def test_write_makes_a_folder_again_after_it_was_removed(tmp_path):
    store = PickleStore(str(tmp_path / "db"))
    store.write("jobs/alice/1", {"a": 1})
    shutil.rmtree(tmp_path / "db" / "jobs" / "alice")
    store.write("jobs/alice/2", {"a": 2})
    assert store.read("jobs/alice/2") == {"a": 2}
