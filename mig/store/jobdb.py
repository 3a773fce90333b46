"""The job database: every job's record and the index behind lists and counts.

One SQLite file (the standard library's ``sqlite3``) holds each job's pickled
record next to the few columns that lists, counts, searches, ``jobchanges``,
sweeps and idempotency need, with an index for each of those questions, and
small tables of per-user counts and daily activity kept up to date in the
same transaction as the change.  So start-up reads only the jobs that are not
final, memory stays bounded by SQLite's page cache whatever the number of
jobs, and every question is answered from an index (see docs/performance.md
for the figures behind this choice).

Durability is the journal's job: commits here are not synced (WAL with
``synchronous=NORMAL``), and ``sync`` makes all of them durable at once
before the journal segments that cover them are dropped.  Records never
leave this module as anything but bytes; ``mig.store.records`` decodes them.
"""

import collections
import contextlib
import sqlite3
import threading
import time
import zlib

from mig.errors import DiskFull, SystemFailure
from mig.store import fileio
from mig.store.jobqueries import JobQueries

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS owners(no INTEGER PRIMARY KEY, dn TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS jobs(
    seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, owner INTEGER NOT NULL,
    state TEXT NOT NULL, final INTEGER NOT NULL, name TEXT NOT NULL, lname TEXT NOT NULL,
    project TEXT,
    received REAL NOT NULL, changed REAL NOT NULL, sweep TEXT, idem TEXT,
    crc INTEGER NOT NULL, record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_list ON jobs(owner, seq, received, state, lname);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(owner, state, changed);
CREATE INDEX IF NOT EXISTS jobs_changed ON jobs(owner, changed);
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs(seq) WHERE final = 0;
CREATE INDEX IF NOT EXISTS jobs_sweep ON jobs(sweep, state) WHERE sweep IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_idem ON jobs(owner, idem) WHERE idem IS NOT NULL;
CREATE TABLE IF NOT EXISTS counts(owner INTEGER, state TEXT, n INTEGER NOT NULL,
    PRIMARY KEY(owner, state)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sweep_counts(sweep TEXT, state TEXT, n INTEGER NOT NULL,
    PRIMARY KEY(sweep, state)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archived_counts(owner INTEGER, state TEXT, n INTEGER NOT NULL,
    PRIMARY KEY(owner, state)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS activity(owner INTEGER, day INTEGER, submitted INTEGER NOT NULL,
    finished INTEGER NOT NULL, PRIMARY KEY(owner, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archive(
    seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL, owner INTEGER NOT NULL,
    state TEXT NOT NULL, name TEXT NOT NULL, lname TEXT NOT NULL, received REAL NOT NULL,
    changed REAL NOT NULL, crc INTEGER NOT NULL, record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS archive_list ON archive(owner, seq, received, state, lname);
CREATE VIRTUAL TABLE IF NOT EXISTS names USING fts5(lname, content='jobs',
    content_rowid='seq', tokenize='trigram', detail='none');
CREATE TABLE IF NOT EXISTS quarantine(seq INTEGER, job_id TEXT, owner TEXT, reason TEXT,
    at REAL, crc INTEGER, record BLOB);
"""

# What one job contributes to the database (record: pickled bytes).
Row = collections.namedtuple("Row", "seq job_id owner state final name lname project received "
                                    "changed sweep idem finished_day record crc")


class StoreError(SystemFailure):
    """The database refused a read or write."""


class StoreFull(StoreError, DiskFull):
    """As StoreError, because the disk has no blocks or inodes left."""


def _failure(what, exc):
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
        return StoreFull("could not %s the job database: the disk is full" % what)
    return StoreError("could not %s the job database: %s" % (what, exc))


class JobDB(JobQueries):
    """Thread-safe: one writer connection under a lock, a pool of readers."""

    def __init__(self, path, files=fileio.OS, cache_kb=16384):
        self.path = path
        self.files = files
        self.cache_kb = cache_kb
        self.lock = threading.Lock()
        self.writer = self._connect(cache_kb)
        self.readers = []
        self.all_readers = []
        self.readers_lock = threading.Lock()
        self.owner_numbers = {}
        try:
            had_names = self.writer.execute(
                "SELECT 1 FROM sqlite_master WHERE name='names'").fetchone()
            self.writer.executescript(SCHEMA)
            # (a name index without this mark has every job in it: it was
            # written with each job, as in the first version of this schema)
            self.writer.execute("INSERT OR IGNORE INTO meta VALUES('names_upto', %s)" % (
                "(SELECT coalesce(max(seq), -1) FROM jobs)" if had_names else "-1"))
            if not had_names:  # a database from before the name index: build it once
                self.writer.execute("INSERT INTO names(names) VALUES('rebuild')")
                self.writer.execute("UPDATE meta SET value=(SELECT coalesce(max(seq), -1) "
                                    "FROM jobs) WHERE key='names_upto'")
            self.writer.execute("INSERT OR IGNORE INTO meta VALUES('next_counter', 0)")
            self.writer.execute("INSERT OR IGNORE INTO meta VALUES('syncs', 0)")
            for no, dn in self.writer.execute("SELECT no, dn FROM owners"):
                self.owner_numbers[dn] = no
        except sqlite3.Error as exc:
            raise _failure("open", exc) from None
        self.owner_names = {no: dn for dn, no in self.owner_numbers.items()}

    def _connect(self, cache_kb):
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-%d" % cache_kb)
            conn.execute("PRAGMA journal_size_limit=%d" % (64 << 20))
        except sqlite3.Error as exc:
            raise _failure("open", exc) from None
        return conn

    @contextlib.contextmanager
    def reader(self):
        """A read-only connection from the pool (they see committed changes)."""
        with self.readers_lock:
            conn = self.readers.pop() if self.readers else None
        if conn is None:
            conn = self._connect(max(2048, self.cache_kb // 4))
            conn.execute("PRAGMA query_only=1")
            with self.readers_lock:
                self.all_readers.append(conn)
        try:
            yield conn
        except sqlite3.Error as exc:
            raise _failure("read", exc) from None
        finally:
            with self.readers_lock:
                self.readers.append(conn)

    def close(self):
        with self.lock, self.readers_lock:
            for conn in self.all_readers + [self.writer]:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self.readers, self.all_readers = [], []

    # -- writing ------------------------------------------------------------------
    def _owner(self, dn):
        """The owner's number (lock held, inside a transaction)."""
        no = self.owner_numbers.get(dn)
        if no is None:
            no = self.writer.execute("INSERT INTO owners(dn) VALUES(?)", (dn,)).lastrowid
            self.owner_numbers[dn] = no
            self.owner_names[no] = dn
        return no

    @contextlib.contextmanager
    def _transaction(self, what):
        with self.lock:
            known = dict(self.owner_numbers)
            try:
                self.writer.execute("BEGIN IMMEDIATE")
                yield self.writer
                self.writer.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self.writer.execute("ROLLBACK")
                self.owner_numbers = known  # owners added in the rolled back transaction
                self.owner_names = {no: dn for dn, no in known.items()}
                raise _failure(what, exc) from None

    def apply(self, rows):
        """Insert or replace jobs (in order; the last row of a job wins) in one
        transaction, keeping counts, sweep counts and activity right."""
        with self._transaction("write") as db:
            top = -1
            for row in rows:
                owner = self._owner(row.owner)
                old = db.execute("SELECT owner, state, sweep FROM jobs WHERE seq=?",
                                 (row.seq,)).fetchone()
                values = (row.seq, row.job_id, owner, row.state, int(row.final), row.name,
                          row.lname,
                          row.project, row.received, row.changed, row.sweep, row.idem,
                          row.crc, row.record)
                if old is None:
                    if db.execute("SELECT 1 FROM archive WHERE seq=?", (row.seq,)).fetchone():
                        continue  # a journal replay of a job archived since
                    db.execute("INSERT INTO jobs VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
                    self._day(db, owner, int(row.received // 86400), 1, 0)
                else:
                    db.execute("UPDATE jobs SET job_id=?, owner=?, state=?, final=?, name=?, lname=?, "
                               "project=?, received=?, changed=?, sweep=?, idem=?, crc=?, "
                               "record=? WHERE seq=?", values[1:] + (row.seq,))
                    self._count(db, old[0], old[1], old[2], -1)
                if row.finished_day is not None and (old is None or old[1] != row.state):
                    self._day(db, owner, row.finished_day, 0, 1)
                self._count(db, owner, row.state, row.sweep, 1)
                top = max(top, row.seq)
            if top >= 0:
                db.execute("UPDATE meta SET value=max(value, ?) WHERE key='next_counter'",
                           (top + 1,))

    @staticmethod
    def _count(db, owner, state, sweep, delta):
        db.execute("INSERT INTO counts VALUES(?,?,?) ON CONFLICT(owner, state) "
                   "DO UPDATE SET n = n + excluded.n", (owner, state, delta))
        if sweep:
            db.execute("INSERT INTO sweep_counts VALUES(?,?,?) ON CONFLICT(sweep, state) "
                       "DO UPDATE SET n = n + excluded.n", (sweep, state, delta))

    @staticmethod
    def _day(db, owner, day, submitted, finished):
        db.execute("INSERT INTO activity VALUES(?,?,?,?) ON CONFLICT(owner, day) DO UPDATE "
                   "SET submitted = submitted + excluded.submitted, "
                   "finished = finished + excluded.finished", (owner, day, submitted, finished))

    def reserve_counter(self, value):
        """Never hand out a job counter below value again (after a purge too)."""
        with self._transaction("write") as db:
            db.execute("UPDATE meta SET value=max(value, ?) WHERE key='next_counter'", (value,))

    def sync(self):
        """Make every committed transaction durable: one synchronous commit
        syncs the write-ahead log, which holds all of them."""
        with self.lock:
            try:
                self.writer.execute("PRAGMA synchronous=FULL")
                try:
                    self.writer.execute("UPDATE meta SET value=value+1 WHERE key='syncs'")
                finally:
                    self.writer.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise _failure("sync", exc) from None

    def quarantine(self, seq, reason, when=None):
        """Move a damaged job out of the index, keeping its bytes for the admin."""
        with self._transaction("quarantine a record in") as db:
            row = db.execute("SELECT job_id, owner, state, sweep, crc, record, lname FROM jobs "
                             "WHERE seq=?", (seq,)).fetchone()
            table = "jobs"
            if row is None:
                row = db.execute("SELECT job_id, owner, state, NULL, crc, record, lname "
                                 "FROM archive WHERE seq=?", (seq,)).fetchone()
                table = "archive"
            if row is None:
                return False
            job_id, owner, state, sweep, crc, blob, lname = row
            if table == "jobs":
                self._unname(db, seq, lname, self.names_upto(db))
            db.execute("INSERT INTO quarantine VALUES(?,?,?,?,?,?,?)",
                       (seq, job_id, self.owner_names.get(owner, "?"), reason,
                        when or time.time(), crc, blob))
            db.execute("DELETE FROM %s WHERE seq=?" % table, (seq,))
            self._count(db, owner, state, sweep, -1)
            if table == "archive":
                db.execute("UPDATE archived_counts SET n = n - 1 WHERE owner=? AND state=?",
                           (owner, state))
            return True

    def retire(self, before, archive, limit=5000):
        """Move (archive) or delete (purge) up to limit final jobs that last
        changed before the time `before`; returns how many."""
        with self._transaction("retire jobs in") as db:
            rows = db.execute("SELECT seq, job_id, owner, state, name, lname, received, "
                              "changed, sweep, record FROM jobs WHERE final=1 AND changed < ? "
                              "LIMIT ?", (before, limit)).fetchall()
            upto = self.names_upto(db)
            for seq, job_id, owner, state, name, lname, received, changed, sweep, blob in rows:
                if archive:
                    db.execute("INSERT INTO archived_counts VALUES(?,?,1) ON CONFLICT(owner, "
                               "state) DO UPDATE SET n = n + 1", (owner, state))
                    packed = zlib.compress(blob, 6)
                    db.execute("INSERT OR REPLACE INTO archive VALUES(?,?,?,?,?,?,?,?,?,?)",
                               (seq, job_id, owner, state, name, lname, received, changed,
                                zlib.crc32(packed), packed))
                else:
                    self._count(db, owner, state, sweep, -1)
                db.execute("DELETE FROM jobs WHERE seq=?", (seq,))
                self._unname(db, seq, lname, upto)
            return len(rows)

    @staticmethod
    def _unname(db, seq, lname, upto):
        """Take a job that leaves the jobs table out of the name index (which
        holds the jobs up to seq upto)."""
        if seq <= upto:
            db.execute("INSERT INTO names(names, rowid, lname) VALUES('delete', ?, ?)",
                       (seq, lname))

    def index_names(self):
        """Add the names of the jobs stored since the last call to the trigram
        index, in one transaction (per job it would cost a merge of the index
        with every submission).  Searches scan the few newer ones directly."""
        with self._transaction("index names in") as db:
            upto = self.names_upto(db)
            top = db.execute("SELECT max(seq) FROM jobs").fetchone()[0]
            if top is None or top <= upto:
                return 0
            added = db.execute("INSERT INTO names(rowid, lname) SELECT seq, lname FROM jobs "
                               "WHERE seq > ? ORDER BY seq", (upto,)).rowcount
            db.execute("UPDATE meta SET value=? WHERE key='names_upto'", (top,))
            return added

    @staticmethod
    def names_upto(db):
        """The highest job seq the name index holds (every one up to it)."""
        return db.execute("SELECT value FROM meta WHERE key='names_upto'").fetchone()[0]

    # -- reading ------------------------------------------------------------------
    def next_counter(self):
        with self.reader() as db:
            stored = db.execute("SELECT value FROM meta WHERE key='next_counter'").fetchone()[0]
            top = db.execute("SELECT max(seq) FROM jobs").fetchone()[0]
        return max(int(stored), (top + 1) if top is not None else 0)

    def get(self, seq):
        """(job_id, owner, record bytes, crc, archived) of a job, or None."""
        with self.reader() as db:
            row = db.execute("SELECT job_id, owner, record, crc FROM jobs WHERE seq=?",
                             (seq,)).fetchone()
            if row is not None:
                return row[0], self.owner_names.get(row[1]), row[2], row[3], False
            row = db.execute("SELECT job_id, owner, record, crc FROM archive WHERE seq=?",
                             (seq,)).fetchone()
        if row is None:
            return None
        job_id, owner, packed, crc = row
        if zlib.crc32(packed) != crc:
            return job_id, self.owner_names.get(owner), b"", -1, True  # damaged: checked later
        try:
            blob = zlib.decompress(packed)
        except zlib.error:
            return job_id, self.owner_names.get(owner), b"", -1, True
        return job_id, self.owner_names.get(owner), blob, None, True

    def summary(self, seq):
        """(job_id, owner, state, changed, name, received) from the index, or None."""
        with self.reader() as db:
            row = db.execute("SELECT job_id, owner, state, changed, name, received FROM jobs "
                             "WHERE seq=?", (seq,)).fetchone()
            if row is None:
                row = db.execute("SELECT job_id, owner, state, changed, name, received "
                                 "FROM archive WHERE seq=?", (seq,)).fetchone()
        if row is None:
            return None
        return (row[0], self.owner_names.get(row[1])) + tuple(row[2:])

    def pending(self):
        """Yield (seq, job_id, owner, record bytes, crc) of every job not final."""
        with self.reader() as db:
            for seq, job_id, owner, blob, crc in db.execute(
                    "SELECT seq, job_id, owner, record, crc FROM jobs WHERE final=0"):
                yield seq, job_id, self.owner_names.get(owner), blob, crc
