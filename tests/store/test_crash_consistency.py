"""Crash consistency: what a power cut at any instant leaves is enough.

The job store and the output collection run on a file layer that records
every write, sync, truncation, removal and folder sync (the store's one OS
boundary, mig.store.fileio.Files).  For every cut point in the recording,
the test builds the folder a power cut there would leave, keeping only what
had been synced (file data after fsync/fdatasync, folder entries after the
folder's fsync, the database as of its last sync; in a second variant also a
torn half of the unsynced journal tail), starts a new JobService on it, and
checks that every acknowledged change is there, nothing older comes back,
and every job recovered as FINISHED has its outputs.

Removing any needed sync makes it fail: the journal's fdatasync, the folder
sync of a new segment, the database sync before segments are dropped, or
the sync of the outputs before FINISHED (see docs/storage.md).
"""

import os
import stat

import pytest

from mig.core import jobs as J
from mig.core.home import Home
from mig.core.jobs import JobService
from mig.core.jobspec import parse_mrsl
from mig.execute.staging import collect_outputs
from mig.store import fileio
from mig.store.pickledb import PickleStore

SERVER = "grid.example.org.0"
JOURNAL = os.sep + "journal" + os.sep


class RecordingFiles(fileio.Files):
    """Records what reaches the disk and when it becomes durable."""

    def __init__(self, root):
        self.root = root
        self.ops = []
        self.paths = {}  # fd -> path of files opened for appending

    def rel(self, path):
        return os.path.relpath(os.path.realpath(path), self.root)

    def open_append(self, path):
        fd = super().open_append(path)
        self.paths[fd] = self.rel(path)
        self.ops.append(("open", self.paths[fd]))
        return fd

    def write_all(self, fd, data):
        super().write_all(fd, data)
        self.ops.append(("write", self.paths[fd], bytes(data)))

    def _synced(self, fd):
        path = os.readlink("/proc/self/fd/%d" % fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            self.ops.append(("dir", self.rel(path), sorted(os.listdir(path))))
        elif fd in self.paths:
            self.ops.append(("sync", self.paths[fd]))
        else:  # a whole file (an output): durable as it is now
            with open(path, "rb") as handle:
                self.ops.append(("file", self.rel(path), handle.read()))

    def fdatasync(self, fd):
        super().fdatasync(fd)
        self._synced(fd)

    def fsync(self, fd):
        super().fsync(fd)
        self._synced(fd)

    def truncate(self, path, length):
        super().truncate(path, length)
        self.ops.append(("truncate", self.rel(path), length))

    def fsync_dir(self, path):
        super().fsync_dir(path)
        self.ops.append(("dir", self.rel(path), sorted(os.listdir(path))))

    def close(self, fd):
        self.paths.pop(fd, None)
        super().close(fd)

    def db_sync(self, db):
        super().db_sync(db)
        with db.lock:
            self.ops.append(("db", db.writer.serialize()))

    def ack(self, job_id, state, durable):
        """The caller was told: this change is kept (durable) or made."""
        self.ops.append(("ack", job_id, state, durable))


def materialize(ops, cut, target, torn):
    """The folder tree a power cut after ops[:cut] leaves, under target."""
    data, durable, listings, database = {}, {}, {}, None
    for op in ops[:cut]:
        kind = op[0]
        if kind == "open":
            data.setdefault(op[1], b"")
        elif kind == "write":
            data[op[1]] = data.get(op[1], b"") + op[2]
        elif kind == "sync":
            durable[op[1]] = data.get(op[1], b"")
        elif kind == "file":
            durable[op[1]] = op[2]
        elif kind == "truncate":
            data[op[1]] = data.get(op[1], b"")[:op[2]]
            durable[op[1]] = durable.get(op[1], b"")[:op[2]]
        elif kind == "dir":
            listings[op[1]] = op[2]
        elif kind == "db":
            database = op[1]

    def present(rel):
        """A path survives when every folder entry on its way was synced."""
        parent, name = os.path.split(rel)
        if parent in ("", "state") and name in ("", "state", "home"):
            return True  # made before the recording started
        return name in listings.get(parent, ()) and present(parent)
    for rel in sorted(set(data) | set(durable)):
        if not present(rel):
            continue
        content = durable.get(rel, b"")
        if torn and JOURNAL in rel and rel in data:
            unsynced = data[rel][len(content):]
            content += unsynced[:len(unsynced) // 2]
        path = os.path.join(target, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
    os.makedirs(os.path.join(target, "state", "jobdb", "journal"), exist_ok=True)
    os.makedirs(os.path.join(target, "home"), exist_ok=True)
    if database is not None and present(os.path.join("state", "jobdb", "jobs.sqlite")):
        image = bytearray(database)  # a database file as it was at its last sync
        image[18] = image[19] = 1  # not in WAL mode: there is no log beside it
        with open(os.path.join(target, "state", "jobdb", "jobs.sqlite"), "wb") as handle:
            handle.write(image)


OUTPUTS = ("stdout", "stderr", "status")


def run_workload(root, files):
    """Submissions, runs with outputs, cancels and checkpoints, each change
    acknowledged to the recorder as a caller would be told."""
    store = PickleStore(os.path.join(root, "state"))
    home = Home(os.path.join(root, "home"))
    service = JobService(store, SERVER, files=files)
    spec_text = "::EXECUTE::\necho hi\n"
    for n in range(14):
        job = service.submit("alice", parse_mrsl(spec_text), spec_text)["JOB_ID"]
        files.ack(job, J.QUEUED, True)
        if n % 4 == 3:
            service.act("alice", job, "cancel")
            files.ack(job, J.CANCELED, True)
            continue
        if n % 3 == 0:
            continue  # stays queued
        service.transition(job, J.EXECUTING, "on host", durable=False)
        files.ack(job, J.EXECUTING, False)
        folder = os.path.join(root, "run", job)
        os.makedirs(folder)
        for suffix in OUTPUTS:
            with open(os.path.join(folder, "%s.%s" % (job, suffix)), "w") as handle:
                handle.write("echo hi 0\n" if suffix == "status" else "%s of %s\n" % (suffix, job))
        spec = parse_mrsl(spec_text)
        outcome = collect_outputs(home, job, spec, folder, [], files=files)
        service.transition(job, J.FINISHED, "finished", EXIT_CODES=outcome.exit_codes)
        files.ack(job, J.FINISHED, True)
        if n % 5 == 4:
            service.checkpoint()
    service.close()


def expected_after(ops, cut):
    """For each job: the states it may be found in after a cut (the last
    durably acknowledged one, any it reached later before the cut, and those
    of changes in flight at the cut, up to the next durable one), and whether
    it must exist at all."""
    history, must = {}, {}
    for op in ops[:cut]:
        if op[0] != "ack":
            continue
        _kind, job, state, durable = op
        if durable:
            history[job] = [state]
            must[job] = True
        else:
            history.setdefault(job, []).append(state)
    settled = set()
    for op in ops[cut:]:
        if op[0] != "ack" or op[1] in settled:
            continue
        _kind, job, state, durable = op
        history.setdefault(job, []).append(state)  # in flight: may or may not be kept
        if durable:
            settled.add(job)
    return history, must


def check_cut(ops, cut, target, torn):
    materialize(ops, cut, target, torn)
    service = JobService(PickleStore(os.path.join(target, "state")), SERVER)
    try:
        history, must = expected_after(ops, cut)
        for job, states in history.items():
            record = service.jobstore.get(job)
            if record is None:
                assert not must.get(job), "cut %d: acknowledged job %s lost" % (cut, job)
                continue
            assert record["STATUS"] in states, \
                "cut %d: %s is %s, expected one of %s" % (cut, job, record["STATUS"], states)
            if record["STATUS"] == J.FINISHED:
                for suffix in OUTPUTS:
                    path = os.path.join(target, "home", "job_output", job,
                                        "%s.%s" % (job, suffix))
                    assert os.path.isfile(path), "cut %d: %s FINISHED without %s" % (
                        cut, job, suffix)
                    with open(path) as handle:
                        assert handle.read(), "cut %d: %s's %s is empty" % (cut, job, suffix)
    finally:
        service.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("recorded"))
    os.makedirs(os.path.join(root, "home"))
    files = RecordingFiles(root)
    run_workload(root, files)
    return files.ops


def test_the_recording_covers_every_kind_of_step(recording):
    kinds = {op[0] for op in recording}
    assert kinds == {"open", "write", "sync", "file", "dir", "db", "ack"}
    assert sum(1 for op in recording if op[0] == "ack") == 14 + 3 + 2 * 7  # submits, cancels, runs (start and finish)


@pytest.mark.parametrize("torn", [False, True], ids=["synced-only", "torn-tail"])
def test_every_cut_point_keeps_every_acknowledged_change(recording, tmp_path, torn):
    for cut in range(len(recording) + 1):
        check_cut(recording, cut, str(tmp_path / ("cut%d" % cut)), torn)
