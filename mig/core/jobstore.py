"""Durable job records: the journal in front, the job database behind.

``put`` appends a change to the journal (synced unless the caller says a
crash may lose it) and then applies it to the database, so nothing is
visible before it is durable and nothing durable is ever refused.  When the
database cannot take a change (the disk is full), the change stays in memory
as *unapplied*, is served from there, and is applied by the next checkpoint;
the journal segments that hold it are kept until then.  A checkpoint makes
the database durable and drops the segments it covers.

Start-up replays the journal into the database (or into memory when the
disk is full) and reads only the jobs that are not final.  A record that
fails its checksum or does not load is quarantined: moved aside with a log
line, listed for the administrator, and never a reason not to start.
"""

import collections
import contextlib
import logging
import os
import threading

from mig.errors import SystemFailure
from mig.store import fileio, records
from mig.store.jobdb import JobDB, StoreError, StoreFull
from mig.store.journal import Journal

log = logging.getLogger("mig.jobstore")

APPLY_BATCH = 5000  # rows per database transaction when replaying or importing
RESERVE = (8 << 20, 0, 0)  # bytes of each reserve file: space and inodes for the database


class DamagedJob(SystemFailure):
    """A job whose stored record is damaged (and now quarantined)."""


class JobStore:
    """Thread-safe.  ``row_of(record, blob, crc)`` describes a record for the
    database; this module knows nothing else about jobs."""

    def __init__(self, folder, row_of, files=fileio.OS, seq_of=None):
        self.folder = folder
        self.row_of = row_of
        self.seq_of = seq_of
        self.files = files
        fileio.make_folder(folder, files)
        self.journal = Journal(os.path.join(folder, "journal"), files)
        path = os.path.join(folder, "jobs.sqlite")
        new = not os.path.exists(path)
        try:
            self.db = JobDB(path, files)
        except StoreError:
            if not self._release():
                raise
            self.db = JobDB(path, files)  # opening makes its log files: room for them
        if new:
            files.fsync_dir(folder)  # the database's name, before anything relies on it
        self._reserve()
        self.lock = threading.Lock()
        self.unapplied = {}  # job_id -> (record, row): durable, not yet in the database
        self.checkpoint_lock = threading.Lock()
        self.turn = threading.Condition()
        self.epoch = 0  # checkpoints started; puts register in the current one
        self.active = collections.Counter()  # epoch -> puts still between journal and db
        self.dirty = False  # journaled since the last checkpoint

    # -- start-up -----------------------------------------------------------------
    def recover(self, legacy=()):
        """Bring the database up to date with the journal (and with records of
        an older appliance, given as an iterable of records).  Never fails for
        want of space: what cannot be applied stays in memory."""
        self._apply_in_batches(legacy)
        replayed = self._apply_in_batches(self.journal.replay(damaged=self._journal_damage))
        self.dirty = bool(replayed)
        if replayed:
            log.info("replayed %d journaled job changes", replayed)
            try:
                self.checkpoint()
            except SystemFailure as exc:
                log.warning("could not checkpoint after the replay (retried later): %s",
                            exc.message)

    def import_legacy(self, store):
        """Move the record files of an older appliance (one pickle file each
        under jobs/<owner>/ of the record store) into the database, once;
        their folder becomes jobs-imported/.  Damaged files are skipped with
        a log line."""
        folder = os.path.join(store.root, "jobs")
        if not os.path.isdir(folder):
            return
        self.recover(_legacy_records(store))
        self.checkpoint()
        os.replace(folder, os.path.join(store.root, "jobs-imported"))

    # -- the reserve: room the database keeps for itself ---------------------------
    def _reserve_paths(self):
        return [os.path.join(self.folder, "reserve-%d" % n) for n in range(len(RESERVE))]

    def _reserve(self):
        """Set space and inodes aside (when there are some) that the database
        gets back when the disk is full: enough to open it, apply what the
        journal already holds, and start."""
        for path, size in zip(self._reserve_paths(), RESERVE):
            if os.path.exists(path):
                continue
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    if size:
                        os.posix_fallocate(fd, 0, size)
                finally:
                    os.close(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                return  # no room for it now: the next checkpoint tries again

    def _release(self):
        """Give the reserve back to the disk; True when there was some."""
        freed = False
        for path in self._reserve_paths():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                freed = True
        if freed:
            log.warning("the disk is full: the job database uses its reserve")
        return freed

    def _apply_in_batches(self, records):
        """Apply records APPLY_BATCH to a transaction; returns how many."""
        batch, count = [], 0
        for record in records:
            batch.append(self._row(record))
            count += 1
            if len(batch) >= APPLY_BATCH:
                self._apply_rows(batch)
                batch = []
        self._apply_rows(batch)
        return count

    def _journal_damage(self, message):
        log.error("skipped a damaged journal entry: %s", message)

    def _row(self, record):
        blob, crc = records.encode(record)
        return record, self.row_of(record, blob, crc)

    def _apply_rows(self, pairs):
        """Apply (record, row) pairs after the unapplied ones; keep them in
        memory when the database refuses."""
        if not pairs and not self.unapplied:
            return True
        with self.lock:
            waiting = list(self.unapplied.values())
        rows = [row for _record, row in waiting + list(pairs)]
        try:
            try:
                self.db.apply(rows)
            except StoreFull:
                if not self._release():
                    raise
                self.db.apply(rows)
        except StoreError as exc:
            with self.lock:
                fresh = not self.unapplied
                for record, row in pairs:
                    self.unapplied[row.job_id] = (record, row)
            if fresh:
                log.warning("job database refused changes (kept in memory and the journal, "
                            "applied when it can take them again): %s", exc.message)
            return False
        with self.lock:
            for record, row in waiting:
                if self.unapplied.get(row.job_id, (None,))[0] is record:
                    del self.unapplied[row.job_id]
            for _record, row in pairs:
                self.unapplied.pop(row.job_id, None)
            if waiting and not self.unapplied:
                log.info("job database takes changes again (%d applied)", len(waiting))
        return True

    # -- writing ------------------------------------------------------------------
    def put(self, batch, durable=True):
        """Make records durable (unless durable=False), then visible; raises
        SystemFailure (JournalError) when the journal did not keep them."""
        pairs = [self._row(record) for record in batch]
        with self.turn:
            epoch = self.epoch
            self.active[epoch] += 1
        try:
            self.journal.append_many([(row.record, row.crc) for _r, row in pairs], durable)
            self.dirty = True
            self._apply_rows(pairs)
        finally:
            with self.turn:
                self.active[epoch] -= 1
                if not self.active[epoch]:
                    del self.active[epoch]
                    self.turn.notify_all()

    def sync(self):
        self.journal.sync()

    def checkpoint(self):
        """Make the database durable and drop the journal segments it now
        covers.  Returns False (segments kept) while changes are unapplied."""
        with self.checkpoint_lock:
            with self.turn:
                # Under the condition: no put can register in this epoch and
                # still append to a segment that the rotation hands back.
                done = self.epoch
                self.epoch += 1
                self.dirty = False
                segments = self.journal.rotate()
                while any(e <= done for e in self.active):
                    self.turn.wait()
            if not self._apply_rows([]):
                self.dirty = True
                return False
            try:
                self.db.index_names()
            except StoreError as exc:  # searches scan the jobs not indexed yet
                log.warning("could not index job names (retried): %s", exc.message)
            try:
                self.files.db_sync(self.db)
            except StoreError:
                self.dirty = True
                raise
            self.journal.drop(segments)
            self._reserve()
            return True

    def close(self):
        with contextlib.suppress(SystemFailure):
            self.checkpoint()
        self.journal.close()
        self.db.close()

    # -- reading -------------------------------------------------------------------
    def unapplied_record(self, job_id):
        """The job's newest record when the database could not take it yet, else None."""
        with self.lock:
            known = self.unapplied.get(job_id)
        return known[0] if known is not None else None

    def unapplied_records(self, owner=None):
        """Records the database could not take yet (the disk was full), of one owner or all."""
        with self.lock:
            return [record for record, _row in self.unapplied.values()
                    if owner is None or record["OWNER"] == owner]

    def needs_checkpoint(self):
        return self.dirty or bool(self.unapplied)

    def get(self, job_id):
        """The record of a job (hot or archived), None when there is none;
        DamagedJob when its stored bytes are damaged (then quarantined)."""
        known = self.unapplied_record(job_id)
        if known is not None:
            return known
        seq = self.seq_of(job_id)
        if seq < 0:
            return None
        found = self.db.get(seq)
        if found is None or found[0] != job_id:
            return None
        _job_id, _owner, blob, crc, _archived = found
        try:
            return records.decode(blob, crc)
        except records.DamagedRecord as exc:
            self._quarantine(seq, job_id, str(exc))
            raise DamagedJob("the stored record of job %s is damaged; it was set aside for "
                             "the administrator" % job_id) from None

    def _quarantine(self, seq, job_id, reason):
        log.error("quarantined the damaged record of job %s: %s", job_id, reason)
        with contextlib.suppress(StoreError):
            self.db.quarantine(seq, reason)

    def pending(self):
        """Records of every job not final, damaged ones quarantined and skipped."""
        with self.lock:
            overlay = list(self.unapplied.values())
        skip = {row.job_id for _record, row in overlay}
        found, damaged = [], []
        for seq, job_id, _owner, blob, crc in self.db.pending():
            if job_id in skip:
                continue
            try:
                found.append(records.decode(blob, crc))
            except records.DamagedRecord as exc:
                damaged.append((seq, job_id, str(exc)))
        for seq, job_id, reason in damaged:
            self._quarantine(seq, job_id, reason)
        return found + [record for record, row in overlay if not row.final]

    def retire(self, before, archive):
        """Archive or purge final jobs last changed before `before`; returns how many."""
        total = 0
        while True:
            moved = self.db.retire(before, archive)
            total += moved
            if moved < 5000:
                return total


def _legacy_records(store):
    for owner in store.folders("jobs"):
        for _name, path in store.records("jobs/" + owner):
            try:
                yield store.read_file(path)
            except (ValueError, OSError) as exc:
                log.error("skipped a damaged job file %s: %s", path, exc)
