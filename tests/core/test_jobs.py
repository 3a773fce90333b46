"""mig.core.jobs: MiG job ids, durable submit, the state machine, user actions,
owner isolation, matching, queue order and idempotency, on a real PickleStore."""

import calendar
import itertools
import os
import threading
import time

import pytest

from mig.core import jobs as J
from mig.core.jobs import ACTIONS, STATES, TRANSITIONS, JobService, make_job_id
from mig.core.jobspec import parse_mrsl
from mig.errors import ClientError, NoJobIdError, StateError
from mig.store.pickledb import PickleStore

SERVER = "grid.example.org.0"
T0 = calendar.timegm((2025, 7, 2, 9, 5, 3))  # 2025-07-02 09:05:03 UTC


class Clock:
    """A settable clock injected into JobService."""

    def __init__(self, now=T0):
        self.now = float(now)

    def __call__(self):
        return self.now

    def tick(self, seconds=1):
        self.now += seconds
        return self.now


def spec(name="", cputime=60):
    text = "::EXECUTE::\necho hi\n\n::CPUTIME::\n%d\n" % cputime
    if name:
        text += "\n::JOBNAME::\n%s\n" % name
    return parse_mrsl(text)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path):
    return PickleStore(str(tmp_path / "state"))


@pytest.fixture
def service(store, clock):
    return JobService(store, SERVER, job_retries=3, clock=clock)


def submit(service, owner="alice", name="", **kwargs):
    return service.submit(owner, spec(name), "::EXECUTE::\necho hi\n", **kwargs)


def drive(service, job_id, *states):
    for state in states:
        service.transition(job_id, state, "test")


# -------------------------------------------------------------------------- job ids

def test_make_job_id_format_no_padding_utc(monkeypatch):
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        assert make_job_id(0, T0, SERVER) == "0_7_2_2025__9_5_3_grid.example.org.0"
        when = calendar.timegm((1999, 12, 31, 23, 59, 59))
        assert make_job_id(42, when, "h.0") == "42_12_31_1999__23_59_59_h.0"
        assert make_job_id(7, calendar.timegm((2030, 1, 1, 0, 0, 0)) + 0.999, "x") == \
            "7_1_1_2030__0_0_0_x"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_submitted_ids_use_counter_and_injected_clock(service, clock):
    first = submit(service)
    clock.now = calendar.timegm((2026, 11, 30, 14, 0, 9))
    second = submit(service)
    assert first["JOB_ID"] == "0_7_2_2025__9_5_3_grid.example.org.0"
    assert second["JOB_ID"] == "1_11_30_2026__14_0_9_grid.example.org.0"
    assert J.job_counter(second["JOB_ID"]) == 1
    assert J.job_counter("garbage") == -1


# -------------------------------------------------------------------------- submit

def test_submit_record_fields(service, clock):
    record = submit(service, name="n1")
    assert record["STATUS"] == J.QUEUED
    assert record["OWNER"] == "alice"
    assert record["RECEIVED_TIMESTAMP"] == T0
    assert record["QUEUED_TIMESTAMP"] == T0
    assert record["RETRY_COUNT"] == 0
    assert record["SPEC"]["RETRIES"] == 4  # set by the parser's default
    assert [h[0] for h in record["HISTORY"]] == [J.PARSE, J.QUEUED]
    assert record["MRSL"] == "::EXECUTE::\necho hi\n"


def test_submit_fills_retries_from_service_when_missing(service):
    s = spec()
    s["RETRIES"] = None
    record = service.submit("alice", s, "text")
    assert record["SPEC"]["RETRIES"] == 3


def test_submit_is_durable_and_reloaded(store, service, clock):
    ids = []
    for owner in ("alice", "bob", "alice"):
        ids.append(submit(service, owner)["JOB_ID"])
        clock.tick()
    drive(service, ids[0], J.EXECUTING, J.FINISHED)
    again = JobService(store, SERVER, clock=clock)
    assert again.record(ids[1])["STATUS"] == J.QUEUED
    assert again.record(ids[0])["STATUS"] == J.FINISHED
    assert again.match("alice", ["*"]) == [ids[0], ids[2]]
    assert again.match("bob", ["ALL"]) == [ids[1]]
    counts = again.state_counts("alice")
    assert counts[J.QUEUED] == 1 and counts[J.FINISHED] == 1
    assert sum(counts.values()) == 2
    assert again.state_counts("bob") == dict({s: 0 for s in STATES}, QUEUED=1)
    assert [r["JOB_ID"] for r in again.queued_records()] == [ids[1], ids[2]]
    # the counter continues after the highest id
    assert submit(again)["JOB_ID"].startswith("3_")


def test_counter_continues_after_max_id_with_gaps(store, clock):
    service = JobService(store, SERVER, clock=clock)
    service.counter = 57
    submit(service)
    again = JobService(store, SERVER, clock=clock)
    assert again.counter == 58
    assert submit(again)["JOB_ID"].startswith("58_")


def test_ids_of_purged_jobs_are_never_used_again(store, clock):
    service = JobService(store, SERVER, clock=clock)
    for _ in range(3):
        service.act("alice", submit(service)["JOB_ID"], "cancel")
    clock.tick(100)
    assert service.retire(50, archive=False) == 3
    assert service.index.total("alice") == 0
    service.close()
    assert JobService(store, SERVER, clock=clock).counter == 3


def test_a_checkpoint_drops_the_journal_it_covers(store, service):
    record = submit(service)
    assert service.checkpoint() is True
    assert service.jobstore.journal.segments() == []  # old segments dropped
    assert JobService(store, SERVER).record(record["JOB_ID"]) == record


def test_journaled_changes_survive_without_a_checkpoint(store, clock):
    service = JobService(store, SERVER, clock=clock)
    first = submit(service)["JOB_ID"]
    second = submit(service)["JOB_ID"]
    service.transition(second, J.FROZEN, "freeze")
    assert len(service.jobstore.journal.segments()) == 1
    again = JobService(store, SERVER, clock=clock)  # as after a kill -9
    assert again.record(first)["STATUS"] == J.QUEUED
    assert again.record(second)["STATUS"] == J.FROZEN
    assert again.jobstore.journal.segments() == []  # the replay checkpointed


def test_torn_journal_tail_is_ignored(store, clock):
    service = JobService(store, SERVER, clock=clock)
    kept = submit(service)["JOB_ID"]
    journal = service.jobstore.journal
    with open(journal._path(journal.number), "ab") as handle:
        handle.write(b"\x00\x00\x10\x00garbage")  # a frame cut short by a crash
    again = JobService(store, SERVER, clock=clock)
    assert again.record(kept)["STATUS"] == J.QUEUED
    assert again.index.total("alice") == 1


def test_transition_many_shares_one_sync_and_reports_each_result(store, clock, monkeypatch):
    service = JobService(store, SERVER, clock=clock)
    ids = [submit(service)["JOB_ID"] for _ in range(3)]
    for job_id in ids:
        service.transition(job_id, J.EXECUTING, "run", durable=False)
    service.transition(ids[1], J.CANCELED, "cancel")  # the finish of this one comes late
    syncs = []
    real_fdatasync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real_fdatasync(fd)))
    fields = {"EXIT_CODES": [("true", 0)]}
    results = service.transition_many(
        [(job_id, J.FINISHED, "done", (J.EXECUTING,), fields) for job_id in ids]
        + [("nosuchjob", J.FINISHED, "done", None, {})])
    assert len(syncs) == 1  # one fdatasync for both finished jobs
    assert [r["STATUS"] for r in (results[0], results[2])] == [J.FINISHED, J.FINISHED]
    assert results[0]["EXIT_CODES"] == [("true", 0)]
    assert isinstance(results[1], StateError) and isinstance(results[3], NoJobIdError)
    assert service.state_counts("alice")[J.FINISHED] == 2
    assert service.record(ids[1])["STATUS"] == J.CANCELED  # the cancel won
    again = JobService(store, SERVER, clock=clock)  # as after a kill -9: both were durable
    assert [again.record(j)["STATUS"] for j in ids] == [J.FINISHED, J.CANCELED, J.FINISHED]


def test_record_files_of_an_older_appliance_are_imported_once(store, clock):
    record = {"JOB_ID": make_job_id(7, T0, SERVER), "OWNER": "alice", "STATUS": J.FINISHED,
              "SPEC": spec("old"), "MRSL": "x", "RECEIVED_TIMESTAMP": T0, "CHANGED": T0,
              "FINISHED_TIMESTAMP": T0, "HISTORY": [], "EXECUTION_HISTORY": []}
    store.write("jobs/alice/%s" % record["JOB_ID"], record)
    with open(store.path("jobs/alice/7_torn"), "wb") as handle:
        handle.write(b"\x80\x05\x95")  # cut off by a crash of the old appliance
    service = JobService(store, SERVER, clock=clock)
    assert service.record(record["JOB_ID"]) == record
    assert service.counter == 8
    assert not os.path.exists(os.path.join(store.root, "jobs"))
    assert os.path.isdir(os.path.join(store.root, "jobs-imported"))
    assert service.index.counts("alice")[J.FINISHED] == 1


# ----------------------------------------------------------------- state machine

ALL_PAIRS = list(itertools.product(STATES, STATES))
PATHS = {  # how to reach each state from a fresh submit (QUEUED)
    J.QUEUED: [],
    J.EXECUTING: [J.EXECUTING],
    J.RETRY: [J.EXECUTING, J.RETRY],
    J.FROZEN: [J.FROZEN],
    J.FINISHED: [J.EXECUTING, J.FINISHED],
    J.FAILED: [J.EXECUTING, J.FAILED],
    J.CANCELED: [J.CANCELED],
    J.EXPIRED: [J.EXPIRED],
}


def documented_transitions():
    """The "Job states" table of docs/quickstart.md: {state: {next states}}."""
    import os
    import re
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "quickstart.md")
    text = open(path, encoding="utf-8").read().split("## 6. Job states", 1)[1]
    table = {}
    for state, _meaning, nexts in re.findall(r"^\| ([A-Z]+) \| (.*?) \|(.*?)\|$", text, re.M):
        table[state] = set(re.findall(r"\b[A-Z]{4,}\b", nexts))
    return table


def test_the_transition_table_is_the_documented_one():
    documented = documented_transitions()
    assert set(documented) == set(STATES)
    assert {state: nexts for state, nexts in documented.items() if nexts} == TRANSITIONS
    assert {state for state, nexts in documented.items() if not nexts} == set(J.FINAL_STATES)
    assert set(J.PENDING_STATES) | set(J.FINAL_STATES) == set(STATES)


@pytest.mark.parametrize("source", list(PATHS))
def test_every_transition_not_in_table_is_refused_and_changes_nothing(store, clock, source):
    service = JobService(store, SERVER, clock=clock)
    for target in STATES:
        job_id = submit(service)["JOB_ID"]
        drive(service, job_id, *PATHS[source])
        before = service.record(job_id)
        counts = service.state_counts("alice")
        queue = [r["JOB_ID"] for r in service.queued_records()]
        clock.tick()
        if target in TRANSITIONS.get(source, ()):
            after = service.transition(job_id, target, "ok")
            assert after["STATUS"] == target
            assert after["%s_TIMESTAMP" % target] == clock.now
            assert after["HISTORY"][-1] == (target, clock.now, "ok")
            continue
        with pytest.raises(StateError) as info:
            service.transition(job_id, target, "nope")
        assert source in str(info.value) and target in str(info.value)
        assert service.record(job_id) == before
        assert service.jobstore.get(job_id) == before
        assert service.state_counts("alice") == counts
        assert [r["JOB_ID"] for r in service.queued_records()] == queue


@pytest.mark.parametrize("final", J.FINAL_STATES)
def test_final_states_have_no_exits(service, final):
    job_id = submit(service)["JOB_ID"]
    drive(service, job_id, *PATHS[final])
    for target in STATES:
        with pytest.raises(StateError):
            service.transition(job_id, target)
    assert service.record(job_id)["STATUS"] == final


def test_transition_expect_refuses_late_result(service):
    job_id = submit(service)["JOB_ID"]
    drive(service, job_id, J.EXECUTING, J.CANCELED)
    with pytest.raises(StateError) as info:
        service.transition(job_id, J.FINISHED, expect=(J.EXECUTING,))
    assert "CANCELED" in str(info.value)
    assert service.record(job_id)["STATUS"] == J.CANCELED


def test_transition_unknown_job(service):
    with pytest.raises(NoJobIdError):
        service.transition("999_1_1_2025__0_0_0_x", J.EXECUTING)


def test_transition_records_message_fields_and_history(service, clock):
    job_id = submit(service)["JOB_ID"]
    clock.tick(5)
    service.transition(job_id, J.EXECUTING, "on r", EXE="e1")
    clock.tick(5)
    record = service.transition(job_id, J.FAILED, "boom")
    assert record["EXE"] == "e1"
    assert record["EXECUTING_TIMESTAMP"] == T0 + 5
    assert record["FAILED_TIMESTAMP"] == T0 + 10
    assert record["FAILED_MESSAGE"] == "boom"
    assert "EXECUTING_MESSAGE" not in record
    assert [h[0] for h in record["HISTORY"]] == [J.PARSE, J.QUEUED, J.EXECUTING, J.FAILED]


# -------------------------------------------------------------------------- actions

ACTION_CASES = {
    "cancel": ({J.QUEUED, J.RETRY, J.EXECUTING, J.FROZEN}, J.CANCELED),
    "freeze": ({J.QUEUED, J.RETRY}, J.FROZEN),
    "thaw": ({J.FROZEN}, J.QUEUED),
}


def test_actions_table():
    assert ACTIONS == {
        "cancel": ((J.PARSE, J.QUEUED, J.RETRY, J.EXECUTING, J.FROZEN), J.CANCELED),
        "freeze": ((J.QUEUED, J.RETRY), J.FROZEN),
        "thaw": ((J.FROZEN,), J.QUEUED),
    }


@pytest.mark.parametrize("action", list(ACTION_CASES))
@pytest.mark.parametrize("source", list(PATHS))
def test_actions_from_each_state(service, action, source):
    allowed, target = ACTION_CASES[action]
    job_id = submit(service)["JOB_ID"]
    drive(service, job_id, *PATHS[source])
    if source in allowed:
        assert service.act("alice", job_id, action) == (source, target)
        record = service.record(job_id)
        assert record["STATUS"] == target
        assert record["HISTORY"][-1][2] == "%s by alice" % action
    else:
        before = service.record(job_id)
        with pytest.raises(StateError) as info:
            service.act("alice", job_id, action)
        assert str(info.value) == "You can only %s jobs with status: %s." % (
            action, " or ".join(ACTIONS[action][0]))
        assert service.record(job_id) == before


def test_unknown_action(service):
    job_id = submit(service)["JOB_ID"]
    with pytest.raises(ClientError) as info:
        service.act("alice", job_id, "delete")
    assert not isinstance(info.value, StateError)
    assert service.record(job_id)["STATUS"] == J.QUEUED


def test_thaw_puts_job_at_queue_end_with_new_queued_timestamp(service, clock):
    a, b, c = (submit(service)["JOB_ID"] for _ in range(3))
    service.act("alice", a, "freeze")
    assert [r["JOB_ID"] for r in service.queued_records()] == [b, c]
    clock.tick(30)
    service.act("alice", a, "thaw")
    assert [r["JOB_ID"] for r in service.queued_records()] == [b, c, a]
    assert service.record(a)["QUEUED_TIMESTAMP"] == T0 + 30


# --------------------------------------------------------------- owner isolation

def test_owner_isolation(service):
    mine = submit(service, "alice")["JOB_ID"]
    theirs = submit(service, "bob")["JOB_ID"]
    assert service.get("alice", mine)["JOB_ID"] == mine
    with pytest.raises(ClientError) as info:
        service.get("alice", theirs)
    assert "You do not have any matching job IDs!" in str(info.value)
    with pytest.raises(ClientError):
        service.get("alice", "no_such_job")
    assert service.match("alice", [theirs]) == []
    assert service.match("alice", ["*"]) == [mine]
    assert service.match("mallory", ["ALL"]) == []
    with pytest.raises(ClientError):
        service.act("alice", theirs, "cancel")
    assert service.record(theirs)["STATUS"] == J.QUEUED
    with pytest.raises(ClientError):
        service.resubmit("alice", theirs)


# -------------------------------------------------------------------------- match

def test_match_globs_exact_all_and_project(store, clock):
    service = JobService(store, SERVER, clock=clock)
    ids = []
    for i in range(12):
        s = spec()
        s["PROJECT"] = "p%d" % (i % 2)
        ids.append(service.submit("alice", s, "x")["JOB_ID"])
        clock.tick()
    assert service.match("alice", ["ALL"]) == ids
    assert service.match("alice", []) == ids
    assert service.match("alice", [""]) == ids
    assert service.match("alice", ["1_*"]) == [ids[1]]
    assert service.match("alice", ["1*"]) == [ids[1], ids[10], ids[11]]
    assert service.match("alice", ["?_*"]) == ids[:10]
    assert service.match("alice", ["[23]_*"]) == [ids[2], ids[3]]
    # exact ids and globs together come back in submit order, without duplicates
    assert service.match("alice", [ids[5], "1_*", ids[0]]) == [ids[0], ids[1], ids[5]]
    assert service.match("alice", [ids[5], "[05]_*"]) == [ids[0], ids[5]]
    assert sorted(service.match("alice", [ids[4], ids[2]])) == sorted([ids[4], ids[2]])
    assert service.match("alice", ["nomatch*", "also-not"]) == []
    assert service.match("alice", ["*"], project="p1") == ids[1::2]
    assert service.match("alice", ["1*"], project="p0") == [ids[10]]


def test_match_does_not_repeat_an_id(service):
    a = submit(service)["JOB_ID"]
    b = submit(service)["JOB_ID"]
    assert service.match("alice", [a, a]) == [a]
    assert service.match("alice", [b, "0_*", b]) == [a, b]


# -------------------------------------------------------------------------- queue

def test_queue_order_retry_goes_to_end(store, service, clock):
    a, b, c = (submit(service)["JOB_ID"] for _ in range(3))
    assert [r["JOB_ID"] for r in service.queued_records()] == [a, b, c]
    clock.tick(10)
    service.transition(a, J.EXECUTING)
    assert [r["JOB_ID"] for r in service.queued_records()] == [b, c]
    clock.tick(10)
    service.transition(a, J.RETRY, "resource died", QUEUED_TIMESTAMP=clock.now)
    assert [r["JOB_ID"] for r in service.queued_records()] == [b, c, a]
    # a freeze and thaw of the middle job sends it to the end
    service.act("alice", b, "freeze")
    service.act("alice", b, "thaw")
    assert [r["JOB_ID"] for r in service.queued_records()] == [c, a, b]
    # the order survives a restart
    again = JobService(store, SERVER, clock=clock)
    assert [r["JOB_ID"] for r in again.queued_records()] == [c, a, b]
    assert again.record(a)["STATUS"] == J.RETRY


def test_queue_holds_only_waiting_states(service):
    ids = {state: submit(service)["JOB_ID"] for state in PATHS}
    for state, job_id in ids.items():
        drive(service, job_id, *PATHS[state])
    queued = {r["JOB_ID"] for r in service.queued_records()}
    assert queued == {ids[J.QUEUED], ids[J.RETRY]}
    for record in service.queued_records():
        assert record["STATUS"] in J.WAITING_STATES


# --------------------------------------------------------------------- idempotency

def test_idempotency_key_returns_same_job(store, service, clock):
    first = submit(service, idempotency_key="k1")
    clock.tick()
    again = submit(service, idempotency_key="k1")
    assert again["JOB_ID"] == first["JOB_ID"]
    assert service.match("alice", ["*"]) == [first["JOB_ID"]]
    other_user = submit(service, "bob", idempotency_key="k1")
    assert other_user["JOB_ID"] != first["JOB_ID"]
    other_key = submit(service, idempotency_key="k2")
    assert other_key["JOB_ID"] != first["JOB_ID"]
    no_key = [submit(service)["JOB_ID"] for _ in range(2)]
    assert no_key[0] != no_key[1]
    # after a restart the key is still known
    restarted = JobService(store, SERVER, clock=clock)
    assert submit(restarted, idempotency_key="k1")["JOB_ID"] == first["JOB_ID"]
    assert len(restarted.match("alice", ["*"])) == 4


# -------------------------------------------------------------------------- counts

def test_state_counts_after_transitions(service):
    ids = [submit(service)["JOB_ID"] for _ in range(7)]
    submit(service, "bob")
    drive(service, ids[0], J.EXECUTING, J.FINISHED)
    drive(service, ids[1], J.EXECUTING, J.RETRY, J.EXECUTING, J.FAILED)
    drive(service, ids[2], J.FROZEN)
    drive(service, ids[3], J.EXECUTING)
    drive(service, ids[4], J.CANCELED)
    drive(service, ids[5], J.EXECUTING, J.RETRY)
    assert service.state_counts("alice") == {
        J.PARSE: 0, J.QUEUED: 1, J.RETRY: 1, J.FROZEN: 1, J.EXECUTING: 1,
        J.FINISHED: 1, J.FAILED: 1, J.CANCELED: 1, J.EXPIRED: 0}
    assert service.state_counts("bob")[J.QUEUED] == 1
    assert sum(service.state_counts("bob").values()) == 1
    assert sum(service.state_counts("nobody").values()) == 0


def test_changed_since(service, clock):
    a = submit(service)["JOB_ID"]
    clock.tick(10)
    b = submit(service)["JOB_ID"]
    assert id_list(service.changed_since("alice", T0 + 5)) == (T0 + 10, [b])
    clock.tick(10)
    service.transition(a, J.EXECUTING)
    assert service.changed_since("alice", T0 + 15) == (T0 + 20, [(a, J.EXECUTING, T0 + 20)])


def id_list(answer):
    return answer[0], [row[0] for row in answer[1]]


def test_changed_since_misses_no_change_still_being_written(service, clock):
    """A change is stamped before its write ends; a poll in between must not
    hand out a `since` that would skip it later."""
    a = submit(service)["JOB_ID"]
    writing, release = threading.Event(), threading.Event()
    real_put = service.jobstore.put

    def slow_put(records, durable=True):
        if any(r["JOB_ID"] == a and r["STATUS"] == J.EXECUTING for r in records):
            writing.set()
            release.wait(10)
        return real_put(records, durable)
    service.jobstore.put = slow_put
    clock.tick(10)
    thread = threading.Thread(target=service.transition, args=(a, J.EXECUTING, "run"))
    thread.start()
    assert writing.wait(10)  # a's change is stamped T0+10 and being written
    clock.tick(10)
    b = submit(service)["JOB_ID"]  # stamped T0+20, published first
    watermark, found = id_list(service.changed_since("alice", T0 + 5))
    assert found == [b] and watermark < T0 + 10
    release.set()
    thread.join(10)
    assert id_list(service.changed_since("alice", watermark))[1] == [a, b]
    assert id_list(service.changed_since("alice", T0 + 15))[1] == [b]  # kept in time order


def test_changed_since_with_a_limit_continues_where_it_stopped(service, clock):
    ids = []
    for _ in range(5):
        clock.tick(1)
        ids.append(submit(service)["JOB_ID"])
    since, seen = 0.0, []
    for _ in range(3):
        since, found = id_list(service.changed_since("alice", since, limit=2))
        seen += found
    assert seen == ids


# ------------------------------------------------------------------------ listeners

def test_listeners_get_job_id_old_new_record(service):
    calls = []
    service.add_listener(lambda *args: calls.append(args))
    record = submit(service)
    job_id = record["JOB_ID"]
    service.transition(job_id, J.EXECUTING, "go")
    service.act("alice", job_id, "cancel")
    with pytest.raises(StateError):
        service.transition(job_id, J.FINISHED)
    assert [(c[0], c[1], c[2]) for c in calls] == [
        (job_id, None, J.QUEUED), (job_id, J.QUEUED, J.EXECUTING),
        (job_id, J.EXECUTING, J.CANCELED)]
    assert calls[0][3] == record
    assert calls[2][3]["STATUS"] == J.CANCELED
    assert calls[2][3] == service.record(job_id)


# ------------------------------------------------------------------------ resubmit

def test_resubmit_new_id_same_spec(service, clock):
    original = submit(service, name="sweep")
    drive(service, original["JOB_ID"], J.EXECUTING, J.FINISHED)
    clock.tick(60)
    new = service.resubmit("alice", original["JOB_ID"])
    assert new["JOB_ID"] != original["JOB_ID"]
    assert new["JOB_ID"] == make_job_id(1, clock.now, SERVER)
    assert new["SPEC"] == original["SPEC"]
    assert new["SPEC"] is not original["SPEC"]
    assert new["STATUS"] == J.QUEUED
    assert new["RESUBMITTED_FROM"] == original["JOB_ID"]
    assert new["MRSL"] == original["MRSL"]
    assert service.record(original["JOB_ID"])["STATUS"] == J.FINISHED


@pytest.mark.parametrize("trigrams", [False, True], ids=["list-index", "trigram-index"])
def test_search_by_name_date_and_state(store, clock, monkeypatch, trigrams):
    from mig.store import jobqueries as jobdb
    monkeypatch.setattr(jobdb, "FTS_FROM", 0 if trigrams else 10 ** 9)
    service = JobService(store, SERVER, clock=clock)
    ids = []
    for n in range(30):
        clock.now += 3600
        spec = parse_mrsl("::EXECUTE::\ntrue\n\n::JOBNAME::\n%s-%d\n" % ("alpha" if n % 3 else "Beta", n))
        ids.append(service.submit("alice", spec, "x")["JOB_ID"])
        if n == 20:
            service.checkpoint()  # names indexed up to here; the newer ones are scanned
    service.transition(ids[4], J.FROZEN, "freeze")
    index = service.index

    def found(*args, **kwargs):
        matched, entries = index.search("alice", *args, limit=100, **kwargs)
        assert matched == len(entries)
        return [e.job_id for e in entries]
    assert found("beta") == [ids[n] for n in (27, 24, 21, 18, 15, 12, 9, 6, 3, 0)]
    assert found("ALPHA-1") == [ids[19], ids[17], ids[16], ids[14],
                                ids[13], ids[11], ids[10], ids[1]]
    since, until = index.entry(ids[5]).received, index.entry(ids[8]).received
    assert found("", since, until) == [ids[7], ids[6], ids[5]]
    assert found("alpha", since, until) == [ids[7], ids[5]]
    assert found(state=J.FROZEN) == [ids[4]]
    assert found(ids[29][:4]) and index.search("bob") == (0, [])
    assert found("a\nb") == []
    assert index.search("alice", "beta", offset=2, limit=3) == \
        (10, [index.page("alice", limit=30)[29 - n] for n in (21, 18, 15)])
    assert [e.job_id for e in index.search("alice", "beta", offset=3, limit=5)[1]] == \
        [ids[n] for n in (18, 15, 12, 9, 6)]  # across the scanned and the indexed ones
    assert [e.job_id for e in index.page("alice", limit=3)] == [ids[29], ids[28], ids[27]]
    assert index.entry(ids[3]).name == "Beta-3"  # shown as written, searched in lower case
    odd = service.submit("alice", parse_mrsl("::EXECUTE::\ntrue\n\n::JOBNAME::\nx_y%z+w\n"),
                         "x")["JOB_ID"]
    assert found("_y%z") == [odd] and found("x_y") == [odd]  # literal text, no wildcards
    assert found("*") == found("x?y") == found("[xy]") == found("x%w") == []
    again = JobService(store, SERVER, clock=clock)  # the same after a restart
    assert again.index.search("alice", "beta", limit=100) == index.search("alice", "beta",
                                                                           limit=100)




# ------------------------------------------------------------------------ retention

def test_old_final_jobs_move_to_the_archive_and_are_still_found(store, clock):
    from mig.daemon.checkpoint import CheckpointDaemon
    service = JobService(store, SERVER, clock=clock)
    old = submit(service, name="old-run")["JOB_ID"]
    drive(service, old, J.EXECUTING, J.FINISHED)
    waiting = submit(service, name="waiting")["JOB_ID"]
    clock.tick(10 * 86400)
    recent = submit(service, name="recent")["JOB_ID"]
    service.act("alice", recent, "cancel")
    moments = iter([0.0, 10.0, 7200.0])
    daemon = CheckpointDaemon(service, retention_days=5, archive=True,
                              clock=lambda: next(moments))
    daemon.tick()  # the first round retires
    daemon.tick()  # within the hour: not again
    index = service.index
    assert index.total("alice") == 2 and index.total("alice", archived=True) == 1
    assert service.get("alice", old)["STATUS"] == J.FINISHED  # its record, from the archive
    assert index.counts("alice")[J.FINISHED] == 1  # still counted
    assert service.match("alice", ["*"]) == [old, waiting, recent]  # archived ones first
    assert service.match("alice", ["*"], offset=1, limit=1) == (3, [waiting])
    assert service.match("alice", ["%s*" % old[:3]]) == [old]
    assert index.search("alice", "old-run")[0] == 0  # not among the current jobs
    matched, entries = index.search("alice", "old-run", archived=True)
    assert matched == 1 and entries[0].job_id == old and entries[0].name == "old-run"
    with pytest.raises(StateError):
        service.transition(old, J.QUEUED)
    service.close()
    again = JobService(store, SERVER, clock=clock)
    assert again.get("alice", old)["STATUS"] == J.FINISHED
    assert again.index.total("alice", archived=True) == 1


def test_purged_jobs_are_gone_and_leave_the_counts(store, clock):
    service = JobService(store, SERVER, clock=clock)
    done = submit(service)["JOB_ID"]
    service.act("alice", done, "cancel")
    kept = submit(service)["JOB_ID"]
    clock.tick(86400)
    assert service.retire(3600, archive=False) == 1
    with pytest.raises(ClientError):
        service.get("alice", done)
    assert service.index.counts("alice")[J.CANCELED] == 0
    assert service.match("alice", ["*"]) == [kept]


def test_a_failing_listener_neither_stops_a_change_nor_the_other_listeners(service):
    """A listener that raises (a notice that cannot be written on a full disk) is
    logged; the change stays made and the listeners after it still hear of it."""
    heard = []

    def failing(job_id, old, new, record):
        raise OSError(28, "No space left on device")
    service.add_listener(failing)
    service.add_listener(lambda job_id, old, new, record: heard.append((old, new)))
    record = submit(service)
    service.transition(record["JOB_ID"], J.EXECUTING, "test")
    assert service.record(record["JOB_ID"])["STATUS"] == J.EXECUTING
    assert heard == [(None, J.QUEUED), (J.QUEUED, J.EXECUTING)]
