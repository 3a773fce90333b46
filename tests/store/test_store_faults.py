"""The job store under failed writes and syncs, injected at its one OS
boundary (mig.store.fileio.Files), and under damaged records.

Each test names the hole it closes; each fails on the store before issue 11
(a descriptor reused after a failure, a refused job coming back, a fragment
that hides later appends, a damaged record that stops start-up)."""

import errno
import os
import pickle
import random
import sqlite3

import pytest

from mig.core import jobs as J
from mig.core.jobs import JobService
from mig.core.jobspec import parse_mrsl
from mig.daemon.gridd import GridDaemon
from mig.errors import DiskFull, SystemFailure
from mig.store import fileio
from mig.store.pickledb import PickleStore

SERVER = "grid.example.org.0"


class FaultyFiles(fileio.Files):
    """The real OS, with failures armed by the test, and every write recorded
    with the descriptor it went to."""

    def __init__(self):
        self.fail = {}  # operation -> list of errnos to raise on its next calls
        self.short = None  # bytes to write before the next write fails with ENOSPC
        self.writes = []  # (fd, bytes)

    def _check(self, operation):
        queue = self.fail.get(operation)
        if queue:
            number = queue.pop(0)
            raise OSError(number, "injected: %s" % os.strerror(number))

    def open_append(self, path):
        self._check("open")
        return super().open_append(path)

    def write_all(self, fd, data):
        if self.short is not None:
            cut, self.short = self.short, None
            os.write(fd, data[:cut])
            self.writes.append((fd, data[:cut]))
            raise OSError(errno.ENOSPC, "No space left on device")
        self._check("write")
        self.writes.append((fd, bytes(data)))
        super().write_all(fd, data)

    def fdatasync(self, fd):
        self._check("sync")
        super().fdatasync(fd)


def spec():
    return parse_mrsl("::EXECUTE::\necho hi\n")


@pytest.fixture
def files():
    return FaultyFiles()


@pytest.fixture
def store(tmp_path):
    return PickleStore(str(tmp_path / "state"))


def service_on(store, files):
    return JobService(store, SERVER, files=files)


def submit(service):
    return service.submit("alice", spec(), "x")["JOB_ID"]


def restarted(store):
    """The store as a new appliance finds it (the old one's process is gone)."""
    return JobService(store, SERVER)


def test_a_failed_sync_refuses_the_job_for_good_and_the_next_one_works(store, files):
    service = service_on(store, files)
    kept = submit(service)
    files.fail["sync"] = [errno.EIO]
    with pytest.raises(SystemFailure, match="could not sync the job journal"):
        submit(service)
    refused_id = J.make_job_id(1, 0, SERVER).split("_")[0]
    after = submit(service)  # no restart needed
    again = restarted(store)
    assert again.record(kept)["STATUS"] == J.QUEUED
    assert again.record(after)["STATUS"] == J.QUEUED
    ids = again.match("alice", ["*"])
    assert ids == [kept, after]  # the refused one never comes back
    assert not any(j.startswith(refused_id + "_") for j in ids)


def test_no_write_ever_reaches_a_descriptor_the_journal_gave_up(store, files):
    """The critical hole: after a failed sync the segment's descriptor was
    closed and then written again, and its number had become a stranger's
    socket.  Here a pipe takes the number; nothing may arrive in it."""
    service = service_on(store, files)
    submit(service)
    poisoned_fd = service.jobstore.journal.fd
    files.fail["sync"] = [errno.EIO]
    files.fail["open"] = [errno.ENOSPC, errno.ENOSPC]  # and no new segment can be made
    with pytest.raises(SystemFailure):
        submit(service)
    read_end, write_end = os.pipe()
    try:
        assert poisoned_fd in (read_end, write_end)  # the number is someone else's now
        before = len(files.writes)
        for _ in range(2):
            with pytest.raises(DiskFull, match="disk is full"):
                submit(service)
        assert files.writes[before:] == []
        os.set_blocking(read_end, False)
        with pytest.raises(BlockingIOError):
            os.read(read_end, 100)
        job = submit(service)  # space is back: works without a restart
    finally:
        os.close(read_end)
        os.close(write_end)
    assert restarted(store).record(job)["STATUS"] == J.QUEUED


def test_a_short_write_then_enospc_does_not_hide_later_appends(store, files):
    service = service_on(store, files)
    first = submit(service)
    files.short = 7  # a few bytes of the frame reach the file, then the disk is full
    with pytest.raises(DiskFull):
        submit(service)
    later = [submit(service) for _ in range(5)]
    again = restarted(store)  # as after a kill -9: only the journal knows the later ones
    assert again.match("alice", ["*"]) == [first] + later


def test_an_unsynced_change_survives_a_failed_sync_of_another(store, files):
    """Changes saved without a sync (a job starting) are not refused by a
    failure of someone else's sync: they go into the next segment."""
    service = service_on(store, files)
    job = submit(service)
    service.transition(job, J.EXECUTING, "on host", durable=False)
    files.fail["sync"] = [errno.EIO]
    with pytest.raises(SystemFailure):
        submit(service)
    service.sync()
    assert restarted(store).record(job)["STATUS"] == J.EXECUTING


def test_an_outcome_the_store_refused_is_recorded_later(store, files):
    """A FINISHED that could not be written must not leave the job EXECUTING."""
    service = service_on(store, files)
    job = submit(service)

    class Registry:
        generation = 0

        def all(self):
            return []

        def get(self, _unit):
            return None
    daemon = GridDaemon(service, Registry(), policy=None, executors={})
    service.transition(job, J.EXECUTING, "on host", durable=False)

    class Outcome:
        state, message, exit_codes, io_status, verified = J.FINISHED, "", [], [], []
        resource_down = False
    files.fail["sync"] = [errno.EIO]
    daemon.report(job, Outcome())
    assert service.record(job)["STATUS"] == J.EXECUTING
    assert job in daemon.unrecorded
    daemon.tick(0)
    assert service.record(job)["STATUS"] == J.FINISHED
    assert not daemon.unrecorded
    assert restarted(store).record(job)["STATUS"] == J.FINISHED


def _flip_record(store, job_id, rng):
    path = os.path.join(store.root, "jobdb", "jobs.sqlite")
    db = sqlite3.connect(path)
    seq = J.job_counter(job_id)
    blob = bytearray(db.execute("SELECT record FROM jobs WHERE seq=?", (seq,)).fetchone()[0])
    for _ in range(3):
        blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
    db.execute("UPDATE jobs SET record=? WHERE seq=?", (bytes(blob), seq))
    db.commit()
    db.close()


@pytest.mark.parametrize("seed", range(5))
def test_a_damaged_record_is_quarantined_and_never_stops_start_up(store, seed):
    rng = random.Random(seed)
    service = JobService(store, SERVER)
    pending = submit(service)
    done = submit(service)
    service.act("alice", done, "cancel")
    healthy = submit(service)
    service.close()
    _flip_record(store, pending, rng)  # read at start-up
    _flip_record(store, done, rng)  # read when asked for
    again = restarted(store)  # starts
    assert again.record(healthy)["STATUS"] == J.QUEUED
    with pytest.raises(SystemFailure, match="damaged; it was set aside"):
        again.get("alice", done)
    quarantined = {row[0]: row for row in again.index.quarantined()}
    assert set(quarantined) == {pending, done}
    assert quarantined[done][1] == "alice" and "checksum" in quarantined[done][2]
    assert again.index.counts("alice")[J.QUEUED] == 1  # the damaged ones left the counts
    assert again.match("alice", ["*"]) == [healthy]
    assert restarted(store).index.quarantined() == again.index.quarantined()


def test_a_damaged_pickle_never_allocates_or_raises_anything_but_damage():
    """Bytes that pass no checksum still load only as plain data, and any
    failure is DamagedRecord (never TypeError, OverflowError, MemoryError)."""
    from mig.store import records
    data, _crc = records.encode({"JOB_ID": "1_x", "HISTORY": [("QUEUED", 1.0, "q")] * 20,
                                 "SPEC": {"EXECUTE": ["echo"] * 10}})
    rng = random.Random(11)
    for _ in range(3000):
        damaged = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            records.decode(bytes(damaged))
        except records.DamagedRecord:
            pass
    # a memo index of billions: the kind of byte flip that asked for 16 GB
    huge_memo = b"\x80\x05\x95\x0a\x00\x00\x00\x00\x00\x00\x00}r\xff\xff\xff\x7f."
    with pytest.raises(records.DamagedRecord):
        records.decode(huge_memo)
    with pytest.raises(records.DamagedRecord, match="plain data"):
        records.decode(pickle.dumps(os.system))  # never a callable
