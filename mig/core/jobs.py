"""Jobs: the record, MiG job ids, and the one state machine.

``JobService.transition`` is the only place a job's state changes.  Every
change is written durably before it is acknowledged and recorded with its
time in the job's history.  An in-memory index keeps per-user counts per
state and the queue order cheap; it is rebuilt from the records on start.
"""

import bisect
import collections
import copy
import itertools
import fnmatch
import os
import threading
import time

from mig.core import jobspec
from mig.core.jobqueue import JobQueue
from mig.store.journal import Journal
from mig.errors import ClientError, MigError, NoJobIdError, StateError

PARSE, QUEUED, RETRY, FROZEN, EXECUTING = "PARSE", "QUEUED", "RETRY", "FROZEN", "EXECUTING"
FINISHED, FAILED, CANCELED, EXPIRED = "FINISHED", "FAILED", "CANCELED", "EXPIRED"
STATES = (PARSE, QUEUED, RETRY, FROZEN, EXECUTING, FINISHED, FAILED, CANCELED, EXPIRED)
PENDING_STATES = (PARSE, QUEUED, RETRY, FROZEN, EXECUTING)
FINAL_STATES = (FINISHED, FAILED, CANCELED, EXPIRED)
MAX_CARRIED = 10000  # records a checkpoint carries in the journal rather than writing
WAITING_STATES = (QUEUED, RETRY)

TRANSITIONS = {
    PARSE: {QUEUED, CANCELED},
    QUEUED: {EXECUTING, FROZEN, CANCELED, EXPIRED},
    RETRY: {EXECUTING, FROZEN, CANCELED, EXPIRED},
    FROZEN: {QUEUED, CANCELED, EXPIRED},
    EXECUTING: {FINISHED, FAILED, RETRY, CANCELED},
}

# User actions: name -> (allowed source states, target state)
ACTIONS = {
    "cancel": ((PARSE, QUEUED, RETRY, EXECUTING, FROZEN), CANCELED),
    "freeze": ((QUEUED, RETRY), FROZEN),
    "thaw": ((FROZEN,), QUEUED),
}
MAX_ACTION_JOBS = 500
MAX_RESUBMIT_JOBS = 100


def make_job_id(counter, when, server_id):
    """MiG's id: <counter>_<month>_<day>_<year>__<hour>_<min>_<sec>_<server_id>."""
    t = time.gmtime(when)
    return "%d_%d_%d_%d__%d_%d_%d_%s" % (counter, t.tm_mon, t.tm_mday, t.tm_year,
                                         t.tm_hour, t.tm_min, t.tm_sec, server_id)


def job_counter(job_id):
    try:
        return int(job_id.split("_", 1)[0])
    except ValueError:
        return -1


class IndexEntry:
    """What lists and counts need, without loading the record."""

    __slots__ = ("owner", "state", "name", "project", "received", "changed")

    def __init__(self, owner, state, name, project, received, changed):
        self.owner, self.state, self.name = owner, state, name
        self.project, self.received, self.changed = project, received, changed


class Listing:
    """One user's jobs in submission order: ids, received times and searchable names."""

    __slots__ = ("ids", "received", "names", "text", "offsets")

    def __init__(self):
        self.ids, self.received, self.names = [], [], []
        self.text, self.offsets = None, None

    def search(self, needle):
        """Positions of the names containing needle, found by str.find in C."""
        if self.text is None:
            self.text = "\n".join(self.names)
            self.offsets = list(itertools.accumulate(len(n) + 1 for n in self.names))
        found, start = [], 0
        while True:
            at = self.text.find(needle, start)
            if at < 0:
                return found
            position = bisect.bisect_right(self.offsets, at)
            if not found or found[-1] != position:
                found.append(position)
            start = self.offsets[position] if position < len(self.offsets) else len(self.text)


class JobService:
    """All job operations; thread-safe; the owner check lives here."""

    def __init__(self, store, server_id, job_retries=4, clock=time.time):
        self.store = store
        self.journal = Journal(os.path.join(store.root, "journal"))
        self.unwritten = {}  # job_id -> journaled record not yet in its file
        self.checkpoint_lock = threading.Lock()
        self.server_id = server_id
        self.job_retries = job_retries
        self.clock = clock
        self.lock = threading.RLock()
        self.settled = threading.Condition(self.lock)
        self.inflight = set()  # jobs whose new record is being written
        self.stamps = {}  # job_id -> CHANGED time of its change being written
        self.waiting = 0  # threads waiting in _claim (no wake-ups when nobody waits)
        self.live = {}  # records of jobs not yet final, so changes need no disk read
        self.index = {}
        self.by_owner = collections.defaultdict(dict)  # owner -> {job_id: None} (ordered)
        # (owner, state) -> {job_id: None}, in the order jobs entered the state
        self.by_state = collections.defaultdict(dict)
        self.listings = collections.defaultdict(Listing)  # owner -> submission-ordered lists
        # sweeps: job -> sweep, sweep -> {job_id: None}, sweep -> Counter of states
        self.sweep_of = {}
        self.sweep_members = collections.defaultdict(dict)
        self.sweep_states = collections.defaultdict(collections.Counter)
        # owner -> {job_id: changed}, least recently changed first (polite polling)
        self.recent = collections.defaultdict(dict)
        self.counts = collections.defaultdict(collections.Counter)
        # owner -> {day number: [submitted, finished]} for the dashboard's chart
        self.activity = collections.defaultdict(dict)
        self.queue = JobQueue()  # QUEUED and RETRY jobs, grouped by requirements
        self.notes = {}  # job_id -> scheduler's latest explanation (not durable)
        self.listeners = []
        self.idempotency = {}  # (owner, key) -> job_id
        self.counter = 0
        self.loading = True  # _index appends in bulk; load() sorts afterwards
        self.load()
        self.loading = False

    # -- loading and indexing -------------------------------------------------
    def load(self):
        """Rebuild the index from the record files plus the journal (the truth)."""
        by_id = {}
        for owner in self.store.folders("jobs"):
            for name, path in self.store.records("jobs/" + owner):
                try:
                    by_id[name] = self.store.read_file(path)
                except (EOFError, ValueError, OSError, ImportError, AttributeError):
                    continue  # torn by a crash (the journal has it) or a stray file
        replayed = 0
        for key, record in self.journal.replay():
            if key[0] == "job":
                by_id[key[1]] = record  # entries are in write order: the last one wins
                self.unwritten[key[1]] = record
                replayed += 1
        records = list(by_id.values())
        by_id = None
        # Submission order for the per-user lists; the queue wants its own order.
        records.sort(key=lambda r: (r["RECEIVED_TIMESTAMP"], job_counter(r["JOB_ID"])))
        counter = self.store.read("system/job_counter", 0)
        for record in records:
            self._index(record)
            counter = max(counter, job_counter(record["JOB_ID"]) + 1)
            key = record.get("IDEMPOTENCY_KEY")
            if key:
                self.idempotency[(record["OWNER"], key)] = record["JOB_ID"]
        self.counter = counter
        for owner, recent in self.recent.items():
            self.recent[owner] = dict(sorted(recent.items(), key=lambda item: item[1]))
        waiting = sorted(self.queue.records(), key=lambda r: (
            r.get("QUEUED_TIMESTAMP") or r["RECEIVED_TIMESTAMP"], job_counter(r["JOB_ID"])))
        self.queue = JobQueue()
        for record in waiting:
            self.queue.add(record)
        records = None
        if replayed:
            self.checkpoint()

    def _index(self, record, old_state=None):
        job_id, owner, state = record["JOB_ID"], record["OWNER"], record["STATUS"]
        if state in FINAL_STATES:
            self.live.pop(job_id, None)
        else:
            self.live[job_id] = record
        entry = self.index.get(job_id)
        if entry is None:
            spec = record["SPEC"]
            entry = IndexEntry(owner, state, spec.get("JOBNAME", ""), spec.get("PROJECT", ""),
                               record["RECEIVED_TIMESTAMP"], record.get("CHANGED", 0))
            self.index[job_id] = entry
            self.by_owner[owner][job_id] = None
            self.by_state[(owner, state)][job_id] = None
            listing = self.listings[owner]
            listing.ids.append(job_id)
            listing.received.append(entry.received)
            listing.names.append(("%s\t%s" % (entry.name, job_id)).lower())
            listing.text = None
            sweep = record.get("SWEEP")
            if sweep:
                self.sweep_of[job_id] = sweep
                self.sweep_members[sweep][job_id] = None
            self._count_activity(owner, record["RECEIVED_TIMESTAMP"], 0)
            if state == FINISHED:
                self._count_activity(owner, record.get("FINISHED_TIMESTAMP") or entry.changed, 1)
        else:
            if state == FINISHED and entry.state != FINISHED:
                self._count_activity(owner, record.get("FINISHED_TIMESTAMP") or 0, 1)
            self.counts[owner][entry.state] -= 1
            sweep = self.sweep_of.get(job_id)
            if sweep:
                self.sweep_states[sweep][entry.state] -= 1
            if entry.state != state:
                self.by_state[(owner, entry.state)].pop(job_id, None)
                self.by_state[(owner, state)][job_id] = None
            entry.state = state
            entry.changed = record.get("CHANGED", 0)
        self.counts[owner][state] += 1
        if job_id in self.sweep_of:
            self.sweep_states[self.sweep_of[job_id]][state] += 1
        self._note_change(self.recent[owner], job_id, entry.changed)
        if state in WAITING_STATES:
            if old_state not in WAITING_STATES:
                self.queue.remove(job_id)  # (re)queued jobs go to the end
            self.queue.add(record)
        else:
            self.queue.remove(job_id)
            self.notes.pop(job_id, None)

    def _note_change(self, recent, job_id, changed):
        """Keep the owner's recent changes in order of their CHANGED time.

        Changes are published in the order their writes end, which is
        nearly, not quite, the order of their times: the few later ones
        published first move behind this one, so that changed_since can stop
        at the first change not newer than its `since`.
        """
        recent.pop(job_id, None)
        if self.loading or not recent or next(reversed(recent.values())) <= changed:
            recent[job_id] = changed
            return
        later = []
        for other in reversed(recent):
            if recent[other] <= changed:
                break
            later.append(other)
        moved = [(other, recent.pop(other)) for other in reversed(later)]
        recent[job_id] = changed
        recent.update(moved)

    def _count_activity(self, owner, when, column):
        day = int(when // 86400)
        days = self.activity[owner]
        counts = days.get(day)
        if counts is None:
            counts = days[day] = [0, 0]
        counts[column] += 1

    def activity_days(self, owner, days, now=None):
        """[(day start epoch, submitted, finished)] for the last `days` days."""
        today = int((now if now is not None else self.clock()) // 86400)
        known = self.activity.get(owner, {})
        return [((day * 86400),) + tuple(known.get(day, (0, 0)))
                for day in range(today - days + 1, today + 1)]

    def owner_jobs(self, owner, state=None, limit=None):
        """Newest first: (job_id, index entry) of the owner's jobs, optionally only
        those in one state (then newest to enter that state first); at most limit,
        so that paging a million jobs reads only the page."""
        with self.lock:
            ids = self.by_owner.get(owner, {}) if state is None else \
                self.by_state.get((owner, state), {})
            chosen = list(itertools.islice(reversed(ids), limit))
        return [(job_id, self.index[job_id]) for job_id in chosen]

    def find_jobs(self, owner, text="", since=None, until=None, state=None):
        """Newest first, the owner's job ids received in [since, until) whose name
        or id contains text (case-insensitive) and (optionally) in a state.
        Dates are found by bisection and text by searching one joined string,
        so a filter over a million jobs stays well under a tenth of a second."""
        with self.lock:
            listing = self.listings.get(owner)
            if listing is None:
                return []
            low = bisect.bisect_left(listing.received, since) if since else 0
            high = bisect.bisect_left(listing.received, until) if until else len(listing.ids)
            if text:
                if "\n" in text:
                    return []  # names never contain a newline; it separates them here
                positions = [p for p in listing.search(text.lower()) if low <= p < high]
            else:
                positions = range(low, high)
            ids = [listing.ids[p] for p in positions]
        if state:
            ids = [j for j in ids if self.index[j].state == state]
        ids.reverse()
        return ids

    def owner_job_count(self, owner, state=None):
        if state is None:
            return len(self.by_owner.get(owner, {}))
        return len(self.by_state.get((owner, state), {}))

    def _save(self, record, durable=True):
        """Journal the record (durably unless told otherwise); its file comes later."""
        self._save_many([record], durable)

    def _save_many(self, records, durable=True):
        with self.lock:
            # Before the append: a checkpoint that has not seen a record in
            # unwritten must not be able to drop the segment holding it.
            for record in records:
                self.unwritten[record["JOB_ID"]] = record
        self.journal.append_many([(("job", r["JOB_ID"]), r) for r in records], durable)

    def sync(self):
        """Make every change journaled so far durable (after a batch of non-durable ones)."""
        self.journal.sync()

    def checkpoint(self, settle=0.0):
        """Write the newest version of journaled records to their files, sync,
        and drop the journal segments this covered.  Returns the files written.

        With ``settle``, a job that is not final and changed less than that
        many seconds ago is carried into the new journal segment instead of
        written: most such jobs change again within seconds (queued, then
        running, then finished), and each file rewrite costs a new inode and
        the deletion of the old one.
        """
        with self.checkpoint_lock:
            with self.lock:
                pending = dict(self.unwritten)
                segments = self.journal.rotate()
            now = self.clock()
            write, carry = [], []
            for job_id, record in pending.items():
                if (settle and record["STATUS"] not in FINAL_STATES
                        and now - record.get("CHANGED", 0) < settle):
                    carry.append((job_id, record))
                else:
                    write.append((job_id, record))
            if len(carry) > MAX_CARRIED:  # a burst: carrying it would bloat the journal
                write, carry = write + carry, []
            for job_id, record in write:
                self.store.write_covered("jobs/%s/%s" % (record["OWNER"], job_id), record)
            with self.lock:
                # Under the lock, so that a newer version of the job is always
                # journaled after the carried one (replay keeps the last).
                for job_id, record in carry:
                    if self.unwritten.get(job_id) is record:
                        self.journal.append(("job", job_id), record, durable=False)
            os.sync()  # one sync for all the files (and carried entries) written above
            self.journal.sync()
            self.journal.drop(segments)
            with self.lock:
                for job_id, record in write:
                    if self.unwritten.get(job_id) is record:
                        del self.unwritten[job_id]
            return len(write)

    def close(self):
        self.checkpoint()
        self.journal.close()

    def _read(self, job_id):
        """The current record (shared: never change it in place)."""
        record = self.live.get(job_id) or self.unwritten.get(job_id)
        if record is not None:
            return record
        entry = self.index[job_id]
        return self.store.read("jobs/%s/%s" % (entry.owner, job_id))

    def _claim(self, job_id):
        """Wait until no other change of this job is being written; then own it.
        Call with the lock held."""
        while job_id in self.inflight:
            self.waiting += 1
            try:
                self.settled.wait()
            finally:
                self.waiting -= 1
        self.inflight.add(job_id)

    def _wake(self):
        if self.waiting:
            self.settled.notify_all()

    def _publish(self, record, old_state, written):
        """After the write: index the record (if written) and release the job."""
        with self.lock:
            self.inflight.discard(record["JOB_ID"])
            self.stamps.pop(record["JOB_ID"], None)
            if written:
                self._index(record, old_state)
            self._wake()

    # -- submission -----------------------------------------------------------
    def submit(self, owner, spec, source_text, idempotency_key=None, extra=None, durable=True):
        """Store a parsed job as QUEUED (durably unless told otherwise) and return it."""
        with self.lock:
            if idempotency_key:
                known = self.idempotency.get((owner, idempotency_key))
                if known:
                    return self._read(known)
            now = self.clock()
            job_id = make_job_id(self.counter, now, self.server_id)
            self.counter += 1
            if spec.get("RETRIES") is None:
                spec["RETRIES"] = self.job_retries
            record = {
                "JOB_ID": job_id, "OWNER": owner, "STATUS": QUEUED, "SPEC": spec,
                "MRSL": source_text, "RECEIVED_TIMESTAMP": now, "PARSE_TIMESTAMP": now,
                "QUEUED_TIMESTAMP": now, "CHANGED": now, "RETRY_COUNT": 0,
                "HISTORY": [(PARSE, now, "received"), (QUEUED, now, "queued")],
                "EXECUTION_HISTORY": [], "IDEMPOTENCY_KEY": idempotency_key,
            }
            record.update(extra or {})
            self.inflight.add(job_id)
            self.stamps[job_id] = now
            if idempotency_key:
                self.idempotency[(owner, idempotency_key)] = job_id
            save_counter = self.counter % 100 == 0
        # The write (and its fsync) happens outside the lock, so that many
        # submissions and state changes reach the disk side by side.
        try:
            self._save(record, durable)
        except BaseException:
            with self.lock:
                self.idempotency.pop((owner, idempotency_key), None)
            self._publish(record, None, written=False)
            raise
        if save_counter:
            self.store.write("system/job_counter", self.counter, durable=False)
        self._publish(record, None, written=True)
        self._notify(job_id, None, QUEUED, record)
        return record

    # -- state changes ----------------------------------------------------------
    def transition(self, job_id, new_state, message="", expect=None, durable=True, **fields):
        """The only place states change.  Returns the new record or raises StateError.

        ``expect`` optionally names the states the caller believes the job is
        in, so that a late result (e.g. after a cancel) is refused, not applied.
        ``durable=False`` skips the fsync (still atomic) for changes that a crash
        may lose safely, such as the start of a run that recovery redoes anyway.
        """
        result = self.transition_many([(job_id, new_state, message, expect, fields)], durable)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def transition_many(self, changes, durable=True):
        """Several state changes, each as transition() makes it, sharing one
        journal sync.  ``changes`` holds (job_id, new_state, message, expect,
        fields) tuples; the result for each, in order, is its new record or
        the MigError that refused it.  No change is visible before all of
        them are durable.
        """
        results = [None] * len(changes)
        claimed, later = [], []
        with self.lock:
            for i, (job_id, new_state, _message, expect, _fields) in enumerate(changes):
                if job_id in self.inflight and claimed:
                    later.append(i)  # waiting for it while holding claims could deadlock
                    continue
                try:
                    current = self._claim_for(job_id, new_state, expect)
                except MigError as exc:
                    results[i] = exc
                    continue
                claimed.append((i, current))
            now = self.clock()
            for _i, current in claimed:
                self.stamps[current["JOB_ID"]] = now
        written = []
        for i, current in claimed:
            _job_id, new_state, message, _expect, fields = changes[i]
            written.append((i, current["STATUS"],
                            self._changed(current, new_state, message, fields, now)))
        try:
            if written:
                self._save_many([record for _i, _old, record in written], durable)
        except BaseException:
            for _i, old, record in written:
                self._publish(record, old, written=False)
            raise
        for i, old, record in written:
            self._publish(record, old, written=True)
            self._notify(record["JOB_ID"], old, record["STATUS"], record)
            results[i] = record
        for i in later:
            job_id, new_state, message, expect, fields = changes[i]
            try:
                results[i] = self.transition(job_id, new_state, message, expect, durable,
                                             **fields)
            except MigError as exc:
                results[i] = exc
        return results

    def _claim_for(self, job_id, new_state, expect):
        """Claim a job for a change to new_state and return its record, or raise
        (the lock held)."""
        if job_id not in self.index:
            raise NoJobIdError("%s: no such job" % job_id)
        self._claim(job_id)
        try:
            current = self._read(job_id)
            old = current["STATUS"]
            if expect is not None and old not in expect:
                raise StateError("job %s is %s, not %s" % (job_id, old, "/".join(expect)))
            if new_state not in TRANSITIONS.get(old, ()):
                raise StateError("job %s cannot go from %s to %s" % (job_id, old, new_state))
        except BaseException:
            self.inflight.discard(job_id)
            self._wake()
            raise
        return current

    @staticmethod
    def _changed(current, new_state, message, fields, now):
        """The record after a change (a new dict: records are shared, never edited)."""
        record = dict(current, **fields)
        record["STATUS"] = new_state
        record["%s_TIMESTAMP" % new_state] = now
        record["CHANGED"] = now
        record["HISTORY"] = list(current["HISTORY"]) + [(new_state, now, message)]
        if message and (new_state in (FAILED, RETRY, EXPIRED, CANCELED)
                        or (new_state == FINISHED and message != "finished")):
            record["%s_MESSAGE" % new_state] = message  # e.g. outputs over the quota
        return record

    def update_fields(self, job_id, **fields):
        """Durably record extra fields (e.g. exit codes) without a state change."""
        with self.lock:
            self._claim(job_id)
            record = dict(self._read(job_id), **fields)
        try:
            self._save(record)
        except BaseException:
            self._publish(record, None, written=False)
            raise
        with self.lock:
            self.inflight.discard(job_id)
            if record["STATUS"] not in FINAL_STATES:
                self.live[job_id] = record
            if record["STATUS"] in WAITING_STATES:
                self.queue.add(record)
            self._wake()
        return record

    def add_listener(self, listener):
        self.listeners.append(listener)

    def _notify(self, job_id, old, new, record):
        for listener in list(self.listeners):
            listener(job_id, old, new, record)

    # -- queries ----------------------------------------------------------------
    def get(self, owner, job_id):
        """A copy of the owner's job; other users' jobs do not exist for them."""
        entry = self.index.get(job_id)
        if entry is None or entry.owner != owner:
            raise ClientError("%s: You do not have any matching job IDs!" % job_id)
        return dict(self._read(job_id))

    def record(self, job_id):
        return dict(self._read(job_id))

    def match(self, owner, patterns, project=None):
        """Job ids of the owner matching any glob pattern, oldest first."""
        owned = self.by_owner.get(owner, {})
        wanted = ["*" if p in ("ALL", "") else p for p in patterns] or ["*"]
        if "*" in wanted:
            ids = list(owned)
        else:
            exact = {p for p in wanted if not any(c in p for c in "*?[")}
            globs = [p for p in wanted if p not in exact]
            if globs:
                ids = [j for j in owned if j in exact or
                       any(fnmatch.fnmatchcase(j, g) for g in globs)]
            else:  # each id once, oldest first, without scanning every job
                found = [j for j in exact if j in owned]
                ids = sorted(found, key=lambda j: (self.index[j].received, job_counter(j)))
        if project:
            ids = [j for j in ids if self.index[j].project == project]
        return ids

    def state_counts(self, owner):
        return {s: self.counts[owner][s] for s in STATES}

    def queued_records(self):
        with self.lock:
            return self.queue.records()

    def changed_since(self, owner, since, limit=10000):
        """(watermark, job ids of the owner changed after `since`, oldest change
        first).  Every change up to the watermark is in this answer or an
        earlier one, so the watermark is the `since` of the next call: it
        stays below the time of any change still being written."""
        found = []
        with self.lock:  # under the lock: no copy of a million ids needed
            watermark = self.clock()
            if self.stamps:
                watermark = min(watermark, min(self.stamps.values()) - 1e-6)
            recent = self.recent.get(owner, {})
            for job_id in reversed(recent):
                if recent[job_id] <= since:
                    break
                found.append(job_id)
            found.reverse()
            if len(found) > limit:  # the rest next time: from just before the first left out
                following = recent[found[limit]]
                kept = [j for j in found[:limit] if recent[j] < following]
                found = kept or found[:limit]
                watermark = min(watermark, following - 1e-6)
        return watermark, found[:limit]

    def sweep_counts(self, sweep_id):
        return {state: n for state, n in self.sweep_states.get(sweep_id, {}).items() if n}

    def sweep_job_ids(self, sweep_id):
        return list(self.sweep_members.get(sweep_id, {}))

    # -- user actions -------------------------------------------------------------
    def act(self, owner, job_id, action):
        """cancel / freeze / thaw one job; returns (old, new) or raises StateError."""
        if action not in ACTIONS:
            raise ClientError("unknown action %r: use cancel, freeze or thaw" % action)
        allowed, target = ACTIONS[action]
        record = self.get(owner, job_id)
        old = record["STATUS"]
        if old not in allowed:
            raise StateError("You can only %s jobs with status: %s." % (action, " or ".join(allowed)))
        self.transition(job_id, target, "%s by %s" % (action, owner), expect=allowed)
        return old, target

    def resubmit(self, owner, job_id):
        record = self.get(owner, job_id)
        spec = copy.deepcopy(record["SPEC"])
        return self.submit(owner, spec, record.get("MRSL") or jobspec.to_mrsl(spec),
                           extra={"RESUBMITTED_FROM": job_id})

    def set_note(self, job_id, note):
        self.notes[job_id] = note
