"""The grid daemon: hands queued jobs to executors and follows them to the end.

Event driven (a submission, a finished job or a freed slot wakes it at once)
with a periodic ``tick(now)`` for expiry; tests drive ``tick`` directly.
Retries, time-outs and lost resources all go through here: a failed run is
queued again (RETRY) until RETRIES is spent, then FAILED with its reason.
"""

import logging
import threading
import time

from mig.core import jobs as J
from mig.core import jobspec, scheduler, submission
from mig.core.keywords import DEFAULT_VGRID
from mig.errors import MigError, MrslError, StateError, SystemFailure

log = logging.getLogger("mig.gridd")


class Report:
    """What executors report outcomes through: ``report(job_id, outcome)`` for
    one job, ``report.many([(job_id, outcome), ...])`` for jobs that ended
    together (recorded with one journal sync)."""

    def __init__(self, many):
        self.many = many

    def __call__(self, job_id, outcome):
        self.many([(job_id, outcome)])


class GridDaemon:
    def __init__(self, jobs, registry, policy, executors, expire_after=0,
                 unfit_expire_after=86400, tick_seconds=5.0, clock=time.time, sweeps=None):
        self.jobs = jobs
        self.sweeps = sweeps
        self.registry = registry
        self.policy = policy
        self.executors = executors  # kind -> Executor
        self.user_vgrids = lambda owner: [DEFAULT_VGRID]  # the grid sets VGridDB.user_vgrids
        self.may_start = lambda record, unit: None  # or why not (the owner left its VGrid)
        self.runtimeenvs_for = lambda owner: self.registry.known_runtimeenvs()
        self.expire_after = expire_after
        self.unfit_expire_after = unfit_expire_after
        self.tick_seconds = tick_seconds
        self.clock = clock
        self.wake = threading.Condition()
        self.pending_wake = False
        self.stopping = False
        self.thread = None
        self.placement = {}  # job_id -> (unit_id, start time) while EXECUTING
        self.unfit_since = {}
        self.last_sweep = 0.0
        # Scheduling passes done and when the last one ended: a job submitted
        # before a pass began was considered in it (jobfeasible says so).
        self.passes, self.last_pass = 0, 0.0
        self.report = Report(self._done_many)  # what executors report results through
        self.unrecorded = {}  # job_id -> outcome the store refused (the disk was full)
        self.unrecorded_lock = threading.Lock()
        jobs.add_listener(self._on_change)

    # -- life -----------------------------------------------------------------
    def start(self):
        self.recover()
        self.thread = threading.Thread(target=self._loop, name="gridd", daemon=True)
        self.thread.start()

    def stop(self):
        with self.wake:
            self.stopping = True
            self.wake.notify_all()
        if self.thread:
            self.thread.join(timeout=10)
        for executor in self.executors.values():
            executor.shutdown()

    def recover(self):
        """Jobs left EXECUTING by a previous run are cleaned up and queued again."""
        for executor in self.executors.values():
            if hasattr(executor, "recover_leftovers"):
                executor.recover_leftovers()
        for record in self.jobs.live_records((J.EXECUTING,)):
            job_id = record["JOB_ID"]
            executor = self.executors.get(record.get("EXECUTOR", "local"))
            if executor is not None and hasattr(executor, "recover"):
                executor.recover(job_id)
            self._requeue(record, "RESOURCE DIED: the appliance restarted while the job ran",
                          count=False)

    def poke(self):
        with self.wake:
            self.pending_wake = True
            self.wake.notify()

    def _loop(self):
        while True:
            with self.wake:
                if not self.pending_wake and not self.stopping:
                    self.wake.wait(self.tick_seconds)
                if self.stopping:
                    return
                self.pending_wake = False
            try:
                self.tick(self.clock())
            except Exception:  # the daemon must survive any one failure
                log.exception("scheduler tick failed")

    # -- one round ------------------------------------------------------------------
    def tick(self, now):
        self._record_outcomes()
        if now - self.last_sweep >= self.tick_seconds:
            self.last_sweep = now
            self.sweep(now)
        if self.sweeps is not None:
            self.sweeps.top_up(self._make_sweep_job)
        self.dispatch(now)
        self.passes, self.last_pass = self.passes + 1, self.clock()

    def _make_sweep_job(self, owner, text, extra):
        """One job of a parameter sweep; a job that does not check out is recorded
        as FAILED with its reason, so the sweep's count stays right."""
        try:
            spec = submission.prepare(self.user_vgrids(owner), text,
                                      self.runtimeenvs_for(owner),
                                      self.jobs.job_retries)
        except MrslError as exc:
            spec = dict(jobspec.default_spec(self.jobs.job_retries), EXECUTE=["false"])
            record = self.jobs.submit(owner, spec, text, extra=extra, durable=False)
            self.jobs.transition(record["JOB_ID"], J.EXECUTING, "not run", durable=False)
            self.jobs.transition(record["JOB_ID"], J.FAILED, "invalid job: %s" % exc.message)
            return
        self.jobs.submit(owner, spec, text, extra=extra, durable=False)

    def generation(self, now):
        """Fit caches hold while the units are unchanged, within one hour (prices)."""
        return (self.registry.generation, int(now // 3600))

    def fitting_units(self, record, now=None):
        """Ids of the units a waiting job fits, from the queue's fit cache."""
        now = self.clock() if now is None else now
        generation = self.generation(now)

        def check(spec, unit):
            return scheduler.fits(spec, unit, now)
        units = self.registry.all()
        with self.jobs.waiting_queue() as queue:
            key = queue.where.get(record["JOB_ID"])
            group = queue.groups.get(key) if key is not None else None
            if group is None:
                return [u.unit_id for u in units if check(record["SPEC"], u)]
            return [u.unit_id for u in units if group.fits(u, generation, check)]

    def dispatch(self, now):
        """Fill every free slot with the job the policy picks for it."""
        generation = self.generation(now)
        for unit in self.registry.all():
            if not unit.online and unit.down_until and now >= unit.down_until:
                unit.online = True  # try it again; a new failure doubles the wait
            while unit.free_slots() > 0:
                with self.jobs.waiting_queue() as queue:
                    if not len(queue):
                        return
                    record = self.policy.choose(queue, unit, now, generation)
                if record is None:
                    break
                refused = self.may_start(record, unit)
                if refused:
                    self._expire(record["JOB_ID"], "EXPIRED: " + refused)
                    continue
                self._start(record, unit)

    def _start(self, record, unit):
        job_id = record["JOB_ID"]
        executor = self.executors[unit.executor]
        try:
            # Not fsync'ed: after a crash the job is queued again and its
            # leftovers are cleaned by the executor's recovery, either way.
            record = self.jobs.transition(
                job_id, J.EXECUTING, "on %s" % unit.unit_id, expect=J.WAITING_STATES,
                durable=False,
                UNIQUE_RESOURCE_NAME=unit.resource, EXE=unit.name, EXECUTOR=unit.executor,
                RESOURCE_ID=unit.unit_id)
        except StateError:
            return  # cancelled or frozen meanwhile
        unit.running.add(job_id)
        unit.last_request = self.clock()
        self.placement[job_id] = (unit.unit_id, unit.last_request)
        run = dict(record, SPEC=scheduler.apply_maxfill(record["SPEC"], unit))
        executor.start(run, unit, self.report)

    def sweep(self, now):
        """Expire jobs queued too long, and jobs that no resource can ever run."""
        units = self.registry.all()
        generation = self.generation(now)
        expired = []
        with self.jobs.waiting_queue() as queue:
            for group in list(queue.groups.values()):
                runnable = any(group.fits(u, generation, lambda spec, unit:
                                          scheduler.fits(spec, unit, now)) for u in units)
                for job_id, (_seq, record) in group.jobs.items():
                    waited = now - record.get("QUEUED_TIMESTAMP", now)
                    if self.expire_after and waited > self.expire_after:
                        expired.append((job_id, "EXPIRED: queued for more than %d s"
                                        % self.expire_after))
                    elif runnable:
                        self.unfit_since.pop(job_id, None)
                    else:
                        since = self.unfit_since.setdefault(job_id, now)
                        if self.unfit_expire_after and now - since >= self.unfit_expire_after:
                            expired.append((job_id, self._unfit_message(record, units, now)))
        for job_id, message in expired:
            self._expire(job_id, message)

    @staticmethod
    def _unfit_message(record, units, now):
        report = scheduler.explain(record["SPEC"], units, now)
        details = "; ".join("%s: %s" % (u, ", ".join(r)) for u, r in report.items())
        return "EXPIRED: no resource can run this job (%s)" % (details or "no resources")

    def _expire(self, job_id, message):
        try:
            self.jobs.transition(job_id, J.EXPIRED, message, expect=J.WAITING_STATES)
        except StateError:
            pass
        self.unfit_since.pop(job_id, None)

    # -- results ---------------------------------------------------------------------
    def _free(self, job_id):
        unit_id, _started = self.placement.pop(job_id, (None, 0.0))
        unit = self.registry.get(unit_id) if unit_id else None
        if unit is not None:
            unit.running.discard(job_id)

    def _done_many(self, results):
        """Outcomes of runs: free their slots first (the next jobs need not wait
        for the disk), then record every FINISHED one with one journal sync."""
        now = self.clock()
        for job_id, outcome in results:
            unit_id, started = self.placement.get(job_id, ("", 0.0))
            unit = self.registry.get(unit_id)
            if unit is not None:
                if outcome.resource_down:
                    unit.mark_down(outcome.message, now)
                else:
                    unit.last_seen = now
                    if outcome.state == J.FINISHED:
                        unit.finished_job(started)
            self._free(job_id)
        self.poke()
        self._record(results)

    def _record(self, results):
        """Record outcomes in the store; what it refuses (a full disk) is kept
        and retried every tick, so that no job stays EXECUTING for ever."""
        finished = [(job_id, J.FINISHED, outcome.message or "finished", (J.EXECUTING,),
                     {"EXIT_CODES": outcome.exit_codes, "IO_STATUS": outcome.io_status,
                      "VERIFIED": outcome.verified})
                    for job_id, outcome in results if outcome.state == J.FINISHED]
        refused = []
        try:
            # A refused change (cancelled while finishing) is simply not made:
            # the cancel wins, nothing finishes twice.
            if finished:
                self.jobs.transition_many(finished)
        except SystemFailure as exc:
            log.warning("could not record %d finished jobs (retried): %s", len(finished),
                        exc.message)
            refused += [(j, o) for j, o in results if o.state == J.FINISHED]
        for job_id, outcome in results:
            if outcome.state != J.FINISHED:
                try:
                    self._requeue(self.jobs.record(job_id), outcome.message, count=True)
                except SystemFailure as exc:
                    log.warning("could not record the end of %s (retried): %s", job_id,
                                exc.message)
                    refused.append((job_id, outcome))
                except MigError:
                    pass  # cancelled meanwhile
        with self.unrecorded_lock:
            for job_id, outcome in results:
                self.unrecorded.pop(job_id, None)
            self.unrecorded.update(refused)

    def _record_outcomes(self):
        with self.unrecorded_lock:
            waiting = list(self.unrecorded.items())
        if waiting:
            self._record(waiting)

    def _requeue(self, record, message, count=True):
        """RETRY (queued again) while retries remain, else FAILED with the reason."""
        retries = int(record["SPEC"].get("RETRIES") or 0)
        used = record.get("RETRY_COUNT", 0) + (1 if count else 0)
        history = list(record.get("EXECUTION_HISTORY", []))
        history.append({"resource": record.get("RESOURCE_ID", ""),
                        "executing": record.get("EXECUTING_TIMESTAMP"),
                        "failed": self.clock(), "message": message})
        if used > retries:
            self.jobs.transition(record["JOB_ID"], J.FAILED,
                                 "%s (gave up after %d retries)" % (message, retries),
                                 expect=(J.EXECUTING,), RETRY_COUNT=used,
                                 EXECUTION_HISTORY=history)
        else:
            self.jobs.transition(record["JOB_ID"], J.RETRY, message, expect=(J.EXECUTING,),
                                 RETRY_COUNT=used, EXECUTION_HISTORY=history,
                                 QUEUED_TIMESTAMP=self.clock())

    def _on_change(self, job_id, old, new, record):
        if old == J.EXECUTING and new == J.CANCELED:
            executor = self.executors.get(record.get("EXECUTOR", "local"))
            self._free(job_id)
            if executor is not None:
                executor.cancel(job_id)
        if new in J.WAITING_STATES or old == J.EXECUTING:
            self.poke()
