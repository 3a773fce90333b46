"""Jobs: the record, MiG job ids, and the one state machine.

``JobService.transition`` is the only place a job's state changes.  Every
change is written durably (``JobStore``) before it is acknowledged and
recorded with its time in the job's history.  In memory live only the jobs
that are not final (their records and the queue of waiting ones); questions
about many jobs go to ``JobIndex``, which answers from the job database.
"""

import contextlib
import copy
import logging
import os
import threading
import time

from mig.core import jobspec
from mig.core.jobindex import JobIndex
from mig.core.jobqueue import JobQueue
from mig.core.jobstore import JobStore
from mig.store import fileio
from mig.store.jobdb import Row
from mig.errors import ClientError, MigError, NoJobIdError, StateError

log = logging.getLogger("mig.jobs")

PARSE, QUEUED, RETRY, FROZEN, EXECUTING = "PARSE", "QUEUED", "RETRY", "FROZEN", "EXECUTING"
FINISHED, FAILED, CANCELED, EXPIRED = "FINISHED", "FAILED", "CANCELED", "EXPIRED"
STATES = (PARSE, QUEUED, RETRY, FROZEN, EXECUTING, FINISHED, FAILED, CANCELED, EXPIRED)
PENDING_STATES = (PARSE, QUEUED, RETRY, FROZEN, EXECUTING)
FINAL_STATES = (FINISHED, FAILED, CANCELED, EXPIRED)
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


def row_of(record, blob, crc):
    """What the job database keeps of a record besides its bytes."""
    spec = record["SPEC"]
    name = str(spec.get("JOBNAME") or "")
    state = record["STATUS"]
    finished = record.get("FINISHED_TIMESTAMP") or record.get("CHANGED", 0)
    return Row(seq=job_counter(record["JOB_ID"]), job_id=record["JOB_ID"],
               owner=record["OWNER"], state=state, final=state in FINAL_STATES, name=name,
               lname=("%s\t%s" % (name, record["JOB_ID"])).lower(),
               project=spec.get("PROJECT") or None, received=record["RECEIVED_TIMESTAMP"],
               changed=record.get("CHANGED", 0), sweep=record.get("SWEEP"),
               idem=record.get("IDEMPOTENCY_KEY") or None,
               finished_day=int(finished // 86400) if state == FINISHED else None,
               record=blob, crc=crc)


class JobService:
    """All job operations; thread-safe; the owner check lives here."""

    def __init__(self, store, server_id, job_retries=4, clock=time.time, files=fileio.OS):
        self.server_id = server_id
        self.job_retries = job_retries
        self.clock = clock
        self.jobstore = JobStore(os.path.join(store.root, "jobdb"), row_of, files, job_counter)
        self.index = JobIndex(self.jobstore, STATES, job_counter, clock)
        self.lock = threading.RLock()
        self.settled = threading.Condition(self.lock)
        self.inflight = set()  # jobs whose new record is being written
        self.stamps = {}  # job_id -> CHANGED time of its change being written
        self.waiting = 0  # threads waiting in _claim (no wake-ups when nobody waits)
        self.live = {}  # records of jobs not yet final, so changes need no disk read
        self.queue = JobQueue()  # QUEUED and RETRY jobs, grouped by requirements
        self.listeners = []
        self.idempotency = {}  # (owner, key) -> job_id of submissions being written
        self.jobstore.import_legacy(store)
        self.jobstore.recover()
        self._load()
        self.counter = max(self.jobstore.db.next_counter(),
                           int(store.read("system/job_counter", 0) or 0),
                           max([job_counter(r["JOB_ID"]) + 1
                                for r in self.jobstore.unapplied_records()] or [0]))

    def _load(self):
        """The jobs not yet final: their records and the queue, in queue order."""
        waiting = []
        for record in self.jobstore.pending():
            self.live[record["JOB_ID"]] = record
            if record["STATUS"] in WAITING_STATES:
                waiting.append(record)
        waiting.sort(key=lambda r: (r.get("QUEUED_TIMESTAMP") or r["RECEIVED_TIMESTAMP"],
                                    job_counter(r["JOB_ID"])))
        for record in waiting:
            self.queue.add(record)

    def _index(self, record, old_state=None):
        """Keep the in-memory part (live records and the queue) up to date."""
        job_id, state = record["JOB_ID"], record["STATUS"]
        if state in FINAL_STATES:
            self.live.pop(job_id, None)
        else:
            self.live[job_id] = record
        if state in WAITING_STATES:
            if old_state not in WAITING_STATES:
                self.queue.remove(job_id)  # (re)queued jobs go to the end
            self.queue.add(record)
        else:
            self.queue.remove(job_id)

    # -- questions about many jobs (answered by the index) --------------------------
    def activity_days(self, owner, days, now=None):
        return self.index.activity_days(owner, days, now)

    def state_counts(self, owner):
        return self.index.counts(owner)

    def sweep_counts(self, sweep_id):
        return self.index.sweep_counts(sweep_id)

    def sweep_job_ids(self, sweep_id):
        return self.index.sweep_job_ids(sweep_id)

    def live_records(self, states=PENDING_STATES):
        """Records of the jobs not final (in the given states), a snapshot."""
        with self.lock:
            return [r for r in self.live.values() if r["STATUS"] in states]

    @contextlib.contextmanager
    def waiting_queue(self):
        """The queue of waiting jobs, locked for the caller's scheduling decision."""
        with self.lock:
            yield self.queue

    def entry(self, job_id):
        return self.index.entry(job_id)

    def changed_since(self, owner, since, limit=10000):
        """(watermark, [(job_id, state, changed)] of the owner's jobs changed
        after `since`, oldest change first).  Every change up to the watermark
        is in this answer or an earlier one, so the watermark is the `since`
        of the next call: it stays below the time of any change still being
        written (or not yet in the database)."""
        with self.lock:
            watermark = self.clock()
            if self.stamps:
                watermark = min(watermark, min(self.stamps.values()) - 1e-6)
        # changes the database could not take yet (disk full) are not listed yet
        waiting = [r.get("CHANGED", 0) for r in self.jobstore.unapplied_records(owner)]
        if waiting:
            watermark = min(watermark, min(waiting) - 1e-6)
        rows = self.index.changed(owner, since, limit + 1)
        if len(rows) > limit:  # the rest next time: from just before the first left out
            following = rows[limit][2]
            kept = [r for r in rows[:limit] if r[2] < following]
            rows = kept or rows[:limit]
            watermark = min(watermark, following - 1e-6)
        return watermark, rows

    def _save(self, record, durable=True):
        self._save_many([record], durable)

    def _save_many(self, records, durable=True):
        """Durable (unless told otherwise) and in the database, or raise."""
        self.jobstore.put(records, durable)

    def sync(self):
        """Make every change journaled so far durable (after a batch of non-durable ones)."""
        self.jobstore.sync()

    def checkpoint(self):
        """Make the database durable and drop the journal it covers (see JobStore)."""
        return self.jobstore.checkpoint()

    def needs_checkpoint(self):
        return self.jobstore.needs_checkpoint()

    def retire(self, older_than, archive=True):
        """Archive (or purge) final jobs that last changed more than older_than
        seconds ago; returns how many."""
        return self.jobstore.retire(self.clock() - older_than, archive)

    def close(self):
        self.jobstore.close()

    def _read(self, job_id):
        """The current record (shared: never change it in place), or None."""
        record = self.live.get(job_id)
        if record is not None:
            return record
        return self.jobstore.get(job_id)

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
        if idempotency_key:
            with self.lock:
                known = self.idempotency.get((owner, idempotency_key)) or \
                    self.index.by_idempotency(owner, idempotency_key)
                if known:
                    self._claim(known)  # a submission with this key may still be writing
                    self.inflight.discard(known)
                    self._wake()
                    record = self._read(known)
                    if record is not None:
                        return record
        return self.submit_many(owner, [(spec, source_text)], idempotency_key, extra,
                                durable)[0]

    def submit_many(self, owner, items, idempotency_key=None, extra=None, durable=True):
        """Store parsed jobs, given as (spec, source text), as QUEUED with one
        journal write and sync: all of them are kept, or none (an error)."""
        with self.lock:
            if idempotency_key:
                self.idempotency[(owner, idempotency_key)] = None  # reserved below
            now = self.clock()
            batch = []
            for spec, source_text in items:
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
                batch.append(record)
            if idempotency_key:
                self.idempotency[(owner, idempotency_key)] = batch[0]["JOB_ID"]
        # The write (and its fsync) happens outside the lock, so that many
        # submissions and state changes reach the disk side by side.
        try:
            self._save_many(batch, durable)
        except BaseException:
            with self.lock:
                self.idempotency.pop((owner, idempotency_key), None)
            for record in batch:
                self._publish(record, None, written=False)
            raise
        with self.lock:
            self.idempotency.pop((owner, idempotency_key), None)
        for record in batch:
            self._publish(record, None, written=True)
            self._notify(record["JOB_ID"], None, QUEUED, record)
        return batch

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
        self._claim(job_id)
        try:
            current = self._read(job_id)
            if current is None:
                raise NoJobIdError("%s: no such job" % job_id)
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

    def add_listener(self, listener):
        self.listeners.append(listener)

    def _notify(self, job_id, old, new, record):
        """Tell the listeners of a change already written; one that fails (a
        notice on a full disk) is logged and never undoes or stops the rest."""
        for listener in list(self.listeners):
            try:
                listener(job_id, old, new, record)
            except Exception:
                log.exception("a listener failed on %s %s -> %s", job_id, old, new)

    # -- queries ----------------------------------------------------------------
    def get(self, owner, job_id):
        """A copy of the owner's job; other users' jobs do not exist for them."""
        record = self._read(job_id)
        if record is None or record["OWNER"] != owner:
            raise ClientError("%s: You do not have any matching job IDs!" % job_id)
        return dict(record)

    def record(self, job_id):
        record = self._read(job_id)
        if record is None:
            raise NoJobIdError("%s: no such job" % job_id)
        return dict(record)

    def match(self, owner, patterns, project=None, offset=0, limit=None):
        """Ids of the owner's jobs matching any glob pattern, oldest first: all
        of them, or (with limit) a page of them and the number matched."""
        if limit is None:
            return self.index.match(owner, patterns, project)[1]
        return self.index.match(owner, patterns, project, offset, limit)

    def queued_records(self):
        with self.lock:
            return self.queue.records()

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

