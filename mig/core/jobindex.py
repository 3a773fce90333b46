"""Questions about many jobs: counts, pages, searches, changes, sweeps.

Every answer comes from an index of the job database and is bounded: a page,
a count, a limited list.  Nothing here loads a job's record or holds all of
a user's jobs in memory, so the answers cost the same with a million jobs.
While the disk is full, changes the database could not take yet are found
by ``entry`` and ``get`` but not yet by lists and counts.
"""

import fnmatch
import time

from mig.store.jobqueries import ORDERS, SEARCH_COUNT_LIMIT, SORT_WINDOW, Entry

__all__ = ["JobIndex", "ORDERS", "SEARCH_COUNT_LIMIT", "SORT_WINDOW"]

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
        record = self.store.unapplied_record(job_id)
        if record is not None:
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
        record = self.store.unapplied_record(job_id)
        if record is not None:
            return record["OWNER"]
        found = self.db.summary(seq) if seq >= 0 else None
        return found[1] if found and found[0] == job_id else None

    def _overlay(self, owner):
        """{job_id: (state now, state in the database or None)} of the owner's
        changes the database could not take yet (only while the disk is full)."""
        found = {}
        for record in self.store.unapplied_records(owner):
            job_id = record["JOB_ID"]
            known = self.db.summary(self.seq_of(job_id))
            found[job_id] = (record["STATUS"], known[2] if known and known[0] == job_id
                             else None)
        return found

    def counts(self, owner):
        known = self.db.counts(owner)
        counts = {state: known.get(state, 0) for state in self.states}
        for state, old in self._overlay(owner).values():
            counts[state] += 1
            if old is not None:
                counts[old] -= 1
        return counts

    def total(self, owner, state=None, archived=False):
        total = self.db.total(owner, state, archived)
        if not archived:
            for now, old in self._overlay(owner).values():
                total += (state in (None, now)) - (old is not None and state in (None, old))
        return total

    def page(self, owner, state=None, offset=0, limit=50, order="newest"):
        """Entries newest first (with a state: newest to enter it first), or
        in another of ORDERS (state and name: of the newest SORT_WINDOW)."""
        return self.db.page(owner, state, offset, limit, order)

    def search(self, owner, text="", since=None, until=None, state=None, offset=0, limit=50,
               archived=False, order="newest"):
        """(matched, entries of the page) whose name or id contains text."""
        if "\n" in text or "\t" in text:
            return 0, []
        return self.db.search(owner, text, since, until, state, offset, limit, archived, order)

    def match(self, owner, patterns, project=None, offset=0, limit=MAX_MATCH):
        """(number matched, ids oldest first from offset, at most limit) of the
        owner's jobs matching any of the glob patterns (ALL or * for all)."""
        wanted = ["*" if p in ("ALL", "") else p for p in patterns] or ["*"]
        extra = [j for j, (_now, old) in self._overlay(owner).items() if old is None]
        if "*" in wanted and not project and not extra:
            # Archived jobs (old ones) first, then the hot ones, each oldest first.
            old = self.db.total(owner, archived=True)
            ids = []
            if offset < old:
                seqs = self.db.seqs(owner, limit=offset + limit, archived=True)[offset:]
                found = self.db.ids(seqs, archived=True)
                ids = [found[s][0] for s in seqs if s in found]
            if len(ids) < limit:
                skip = max(0, offset - old)
                seqs = self.db.seqs(owner, limit=skip + limit - len(ids))[skip:]
                found = self.db.ids(seqs)
                ids += [found[s][0] for s in seqs if s in found]
            return old + self.db.total(owner), ids
        exact = [p for p in wanted if not any(c in p for c in "*?[")]
        globs = [p for p in wanted if p not in exact]
        ids, seen = [], set()
        for job_id in extra:  # new jobs the database could not take yet
            if any(fnmatch.fnmatchcase(job_id, g) for g in globs):
                seen.add(job_id)
                ids.append(job_id)
        for job_id in exact:
            if job_id not in seen and self.owner_of(job_id) == owner:
                seen.add(job_id)
                ids.append(job_id)
        for pattern in globs:
            # A MiG id starts with its counter: a pattern whose counter part
            # has no wildcard names one job, found by its key.
            head = pattern.split("_", 1)[0]
            seq = int(head) if "_" in pattern and head.isdigit() else None
            for _seq, job_id in self.db.glob(owner, pattern, seq):
                if job_id not in seen:
                    seen.add(job_id)
                    ids.append(job_id)
        ids.sort(key=self.seq_of)  # (archived ones too: by their counters)
        if project:
            projects = self.db.ids([self.seq_of(j) for j in ids])
            ids = [j for j in ids if projects.get(self.seq_of(j), (0, 0, None))[2] == project]
        return len(ids), ids[offset:offset + limit]

    def changed(self, owner, since, limit):
        """[(job_id, state, changed)] changed after since, oldest change first."""
        return self.db.changed_since(owner, since, limit)

    def sweep_counts(self, sweep_id):
        return self.db.sweep_counts(sweep_id)

    def sweep_job_ids(self, sweep_id):
        return self.db.sweep_job_ids(sweep_id)

    def by_idempotency(self, owner, key):
        for record in self.store.unapplied_records(owner):
            if record.get("IDEMPOTENCY_KEY") == key:
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
