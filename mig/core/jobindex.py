"""Questions about many jobs: counts, pages, searches, changes, sweeps.

Every answer comes from an index of the job database and is bounded: a page,
a count, a limited list.  Nothing here loads a job's record or holds all of
a user's jobs in memory, so the answers cost the same with a million jobs.
While the disk is full, changes the database could not take yet are found
by ``entry`` and ``get`` but not yet by lists and counts.
"""

import fnmatch
import time

from mig.store.jobdb import Entry

MAX_MATCH = 100000  # ids one pattern query may return


class JobIndex:
    def __init__(self, store, states, seq_of, clock=time.time):
        self.store = store
        self.db = store.db
        self.states = states
        self.seq_of = seq_of
        self.clock = clock

    def entry(self, job_id):
        """Entry (job_id, state, name, received, changed) of any job, or None."""
        with self.store.lock:
            known = self.store.unapplied.get(job_id)
        if known is not None:
            record = known[0]
            return Entry(job_id, record["STATUS"], record["SPEC"].get("JOBNAME", ""),
                         record["RECEIVED_TIMESTAMP"], record.get("CHANGED", 0))
        seq = self.seq_of(job_id)
        if seq < 0:
            return None
        found = self.db.summary(seq)
        if found is None or found[0] != job_id:
            return None
        _job_id, _owner, state, changed, name, received = found
        return Entry(job_id, state, name, received, changed)

    def owner_of(self, job_id):
        seq = self.seq_of(job_id)
        with self.store.lock:
            known = self.store.unapplied.get(job_id)
        if known is not None:
            return known[0]["OWNER"]
        found = self.db.summary(seq) if seq >= 0 else None
        return found[1] if found and found[0] == job_id else None

    def counts(self, owner):
        known = self.db.counts(owner)
        return {state: known.get(state, 0) for state in self.states}

    def total(self, owner, state=None, archived=False):
        return self.db.total(owner, state, archived)

    def page(self, owner, state=None, offset=0, limit=50):
        """Entries newest first (with a state: newest to enter it first)."""
        return self.db.page(owner, state, offset, limit)

    def search(self, owner, text="", since=None, until=None, state=None, offset=0, limit=50,
               archived=False):
        """(matched, entries of the page) whose name or id contains text."""
        if "\n" in text or "\t" in text:
            return 0, []
        return self.db.search(owner, text, since, until, state, offset, limit, archived)

    def match(self, owner, patterns, project=None, offset=0, limit=MAX_MATCH):
        """(number matched, ids oldest first from offset, at most limit) of the
        owner's jobs matching any of the glob patterns (ALL or * for all)."""
        wanted = ["*" if p in ("ALL", "") else p for p in patterns] or ["*"]
        if "*" in wanted and not project:
            total = self.db.total(owner)
            seqs = self.db.seqs(owner, limit=offset + limit)[offset:]
            found = self.db.ids(seqs)
            return total, [found[s][0] for s in seqs if s in found]
        exact = [p for p in wanted if not any(c in p for c in "*?[")]
        globs = [p for p in wanted if p not in exact]
        ids, seen = [], set()
        for job_id in exact:
            if job_id not in seen and self.owner_of(job_id) == owner:
                seen.add(job_id)
                ids.append(job_id)
        if globs:
            # The owner's list index is walked in chunks, never loaded at once.
            for seq_chunk in self._chunks(owner):
                found = self.db.ids(seq_chunk)
                for seq in seq_chunk:
                    job_id = found[seq][0] if seq in found else None
                    if job_id and job_id not in seen and any(
                            fnmatch.fnmatchcase(job_id, g) for g in globs):
                        seen.add(job_id)
                        ids.append(job_id)
        ids.sort(key=self.seq_of)
        if project:
            projects = self.db.ids([self.seq_of(j) for j in ids])
            ids = [j for j in ids if projects.get(self.seq_of(j), (0, 0, None))[2] == project]
        return len(ids), ids[offset:offset + limit]

    def _chunks(self, owner, size=20000):
        low = None
        while True:
            seqs = self.db.seqs(owner, low=low, limit=size)
            if not seqs:
                return
            yield seqs
            low = seqs[-1] + 1

    def changed(self, owner, since, limit):
        """[(job_id, state, changed)] changed after since, oldest change first."""
        return self.db.changed_since(owner, since, limit)

    def sweep_counts(self, sweep_id):
        return self.db.sweep_counts(sweep_id)

    def sweep_job_ids(self, sweep_id):
        return self.db.sweep_job_ids(sweep_id)

    def by_idempotency(self, owner, key):
        with self.store.lock:
            for record, _row in self.store.unapplied.values():
                if record["OWNER"] == owner and record.get("IDEMPOTENCY_KEY") == key:
                    return record["JOB_ID"]
        return self.db.by_idempotency(owner, key)

    def activity_days(self, owner, days, now=None):
        """[(day start epoch, submitted, finished)] for the last `days` days."""
        today = int((now if now is not None else self.clock()) // 86400)
        known = self.db.activity(owner, today - days + 1, today)
        return [((day * 86400),) + tuple(known.get(day, (0, 0)))
                for day in range(today - days + 1, today + 1)]

    def quarantined(self):
        return self.db.quarantined()
