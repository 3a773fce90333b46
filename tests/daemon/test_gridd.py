"""The grid daemon driven by tick(now): dispatch, retries, expiry, recovery."""

import queue

from mig.core import jobs as J
from mig.core import jobspec
from mig.core.jobs import JobService
from mig.core.resources import ExeUnit, ResourceRegistry
from mig.core.scheduler import make_policy
from mig.daemon.gridd import GridDaemon
from mig.execute.base import Executor, Outcome
from mig.store.pickledb import PickleStore


class ScriptedExecutor(Executor):
    """Runs nothing; the test decides each job's outcome (a pull agent could look like this)."""

    kind = "scripted"

    def __init__(self):
        self.started = queue.Queue()
        self.cancelled = []
        self.callbacks = {}
        self.recovered = []

    def start(self, record, unit, done):
        self.callbacks[record["JOB_ID"]] = done
        self.started.put((record["JOB_ID"], unit.unit_id, record["SPEC"]))

    def cancel(self, job_id):
        self.cancelled.append(job_id)

    def recover(self, job_id):
        self.recovered.append(job_id)

    def finish(self, job_id, outcome):
        self.callbacks.pop(job_id)(job_id, outcome)


class Clock:
    def __init__(self):
        self.now = 1_790_000_000.0

    def __call__(self):
        return self.now


def make_grid(tmp_path, units=None, **daemon_args):
    clock = Clock()
    store = PickleStore(str(tmp_path / "db"))
    jobs = JobService(store, "test.0", job_retries=2, clock=clock)
    registry = ResourceRegistry()
    for unit in units or [ExeUnit("r.0", "exe", "scripted", slots=2, cputime=3600)]:
        registry.add(unit)
    executor = ScriptedExecutor()
    daemon = GridDaemon(jobs, registry, make_policy("FairFit"), {"scripted": executor},
                        clock=clock, tick_seconds=0, **daemon_args)
    return clock, store, jobs, registry, executor, daemon


def submit(jobs, text="::EXECUTE::\ntrue\n", owner="alice"):
    return jobs.submit(owner, jobspec.parse_mrsl(text), text)["JOB_ID"]


def test_dispatch_respects_slots_and_finishes(tmp_path):
    clock, _, jobs, registry, executor, daemon = make_grid(tmp_path)
    ids = [submit(jobs) for _ in range(3)]
    daemon.tick(clock())
    assert executor.started.qsize() == 2  # two slots
    first, unit_id, _ = executor.started.get()
    assert unit_id == "r.0_exe" and jobs.record(first)["STATUS"] == J.EXECUTING
    executor.finish(first, Outcome(J.FINISHED, exit_codes=[("true", 0)]))
    record = jobs.record(first)
    assert record["STATUS"] == J.FINISHED and record["EXIT_CODES"] == [("true", 0)]
    daemon.tick(clock())
    assert executor.started.qsize() == 2  # the third job took the freed slot
    assert {jobs.record(j)["STATUS"] for j in ids[1:]} == {J.EXECUTING}


def test_outcomes_reported_together_free_slots_and_are_each_recorded(tmp_path):
    clock, _, jobs, registry, executor, daemon = make_grid(tmp_path)
    ids = [submit(jobs, "::EXECUTE::\ntrue\n\n::RETRIES::\n1\n") for _ in range(2)]
    daemon.tick(clock())
    done = executor.callbacks[ids[0]]
    assert done is executor.callbacks[ids[1]] and hasattr(done, "many")
    jobs.transition(ids[1], J.CANCELED, "cancel")  # its late outcome must not count
    extra = submit(jobs)
    done.many([(ids[0], Outcome(J.FINISHED, exit_codes=[("true", 0)])),
               (ids[1], Outcome(J.FINISHED))])
    assert jobs.record(ids[0])["STATUS"] == J.FINISHED
    assert jobs.record(ids[0])["EXIT_CODES"] == [("true", 0)]
    assert jobs.record(ids[1])["STATUS"] == J.CANCELED
    assert registry.all()[0].running == set()
    daemon.tick(clock())
    assert jobs.record(extra)["STATUS"] == J.EXECUTING
    other = submit(jobs, "::EXECUTE::\ntrue\n\n::RETRIES::\n1\n")
    daemon.tick(clock())
    done.many([(extra, Outcome(J.FINISHED)), (other, Outcome("RETRY", "lost"))])
    assert jobs.record(extra)["STATUS"] == J.FINISHED
    assert jobs.record(other)["STATUS"] == J.RETRY  # a failed run in a batch is retried


def test_a_job_that_started_before_a_failure_does_not_bring_the_unit_back(tmp_path):
    """Two jobs run on one unit; one finds the disk full and takes the unit out.
    The other, started before that, finishing proves nothing: the unit stays
    out until its back-off ends, and a job started after that brings it back."""
    clock, _, jobs, registry, executor, daemon = make_grid(tmp_path)
    unit = registry.all()[0]
    first, second = submit(jobs), submit(jobs)
    daemon.tick(clock())
    clock.now += 1
    executor.finish(first, Outcome("RETRY", "disk full on resource r.0: no space",
                                   resource_down=True))
    assert not unit.online and unit.down_reason.startswith("disk full")
    clock.now += 1
    executor.finish(second, Outcome(J.FINISHED))
    assert jobs.record(second)["STATUS"] == J.FINISHED
    assert not unit.online and unit.down_reason.startswith("disk full")  # still out
    clock.now += 10  # the back-off (5 s) is over: the unit is tried again
    daemon.tick(clock())
    assert unit.online and jobs.record(first)["STATUS"] == J.EXECUTING
    executor.finish(first, Outcome(J.FINISHED))
    assert unit.online and unit.failures == 0 and unit.down_reason == ""


def test_failed_runs_are_retried_then_failed_with_reason(tmp_path):
    clock, _, jobs, _, executor, daemon = make_grid(tmp_path)
    job_id = submit(jobs, "::EXECUTE::\ntrue\n\n::RETRIES::\n1\n")
    daemon.tick(clock())
    executor.started.get()
    executor.finish(job_id, Outcome("RETRY", "RESOURCE DIED: host unreachable"))
    record = jobs.record(job_id)
    assert record["STATUS"] == J.RETRY and record["RETRY_COUNT"] == 1
    assert record["EXECUTION_HISTORY"][0]["message"] == "RESOURCE DIED: host unreachable"
    daemon.tick(clock())
    executor.started.get()
    executor.finish(job_id, Outcome("RETRY", "JOB TIMEOUT: too long"))
    record = jobs.record(job_id)
    assert record["STATUS"] == J.FAILED
    assert "JOB TIMEOUT: too long" in record["FAILED_MESSAGE"]
    assert "gave up after 1 retries" in record["FAILED_MESSAGE"]
    assert len(record["EXECUTION_HISTORY"]) == 2


def test_cancel_while_executing_reaches_executor_and_late_result_is_ignored(tmp_path):
    clock, _, jobs, registry, executor, daemon = make_grid(tmp_path)
    job_id = submit(jobs)
    daemon.tick(clock())
    executor.started.get()
    jobs.act("alice", job_id, "cancel")
    assert executor.cancelled == [job_id]
    assert registry.get("r.0_exe").running == set()
    executor.finish(job_id, Outcome(J.FINISHED))  # a result arriving after the cancel
    assert jobs.record(job_id)["STATUS"] == J.CANCELED
    assert [h[0] for h in jobs.record(job_id)["HISTORY"]].count(J.FINISHED) == 0


def test_unfit_job_waits_then_expires_with_reason(tmp_path):
    clock, _, jobs, _, executor, daemon = make_grid(tmp_path, unfit_expire_after=3600)
    job_id = submit(jobs, "::EXECUTE::\ntrue\n\n::ARCHITECTURE::\nSPARC\n")
    daemon.tick(clock())
    assert jobs.record(job_id)["STATUS"] == J.QUEUED and executor.started.empty()
    clock.now += 3599
    daemon.tick(clock())
    assert jobs.record(job_id)["STATUS"] == J.QUEUED
    clock.now += 2
    daemon.tick(clock())
    record = jobs.record(job_id)
    assert record["STATUS"] == J.EXPIRED
    assert "no resource can run this job" in record["EXPIRED_MESSAGE"]
    assert "ARCHITECTURE: the job needs SPARC" in record["EXPIRED_MESSAGE"]


def test_queue_time_expiry(tmp_path):
    units = [ExeUnit("r.0", "exe", "scripted", slots=0)]
    clock, _, jobs, _, _, daemon = make_grid(tmp_path, units, expire_after=100)
    job_id = submit(jobs)
    clock.now += 101
    daemon.tick(clock())
    assert jobs.record(job_id)["STATUS"] == J.EXPIRED


def test_frozen_jobs_are_not_dispatched_until_thawed(tmp_path):
    clock, _, jobs, _, executor, daemon = make_grid(tmp_path)
    job_id = submit(jobs)
    jobs.act("alice", job_id, "freeze")
    daemon.tick(clock())
    assert executor.started.empty()
    jobs.act("alice", job_id, "thaw")
    daemon.tick(clock())
    assert executor.started.get()[0] == job_id


def test_maxfill_raises_requests_at_dispatch(tmp_path):
    units = [ExeUnit("r.0", "exe", "scripted", slots=1, cputime=5000, memory=2048)]
    clock, _, jobs, _, executor, daemon = make_grid(tmp_path, units)
    submit(jobs, "::EXECUTE::\ntrue\n\n::MAXFILL::\nCPUTIME\nMEMORY\n")
    daemon.tick(clock())
    _, _, spec = executor.started.get()
    assert spec["CPUTIME"] == 5000 and spec["MEMORY"] == 2048


def test_restart_requeues_executing_jobs_without_spending_retries(tmp_path):
    clock, store, jobs, _, executor, daemon = make_grid(tmp_path)
    job_id = submit(jobs)
    daemon.tick(clock())
    assert jobs.record(job_id)["STATUS"] == J.EXECUTING
    # a new appliance process on the same state folder
    jobs2 = JobService(store, "test.0", job_retries=2, clock=clock)
    registry2 = ResourceRegistry()
    registry2.add(ExeUnit("r.0", "exe", "scripted", slots=1))
    executor2 = ScriptedExecutor()
    daemon2 = GridDaemon(jobs2, registry2, make_policy("FIFO"), {"scripted": executor2},
                         clock=clock, tick_seconds=0)
    record = jobs2.record(job_id)
    assert record["STATUS"] == J.EXECUTING and record["EXECUTOR"] == "scripted"
    daemon2.recover()
    record = jobs2.record(job_id)
    assert executor2.recovered == [job_id]
    assert record["STATUS"] == J.RETRY and record["RETRY_COUNT"] == 0
    daemon2.tick(clock())
    assert executor2.started.get()[0] == job_id
