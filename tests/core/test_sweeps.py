"""Sweep parameters, combinations and template checks (no server)."""

import pytest

from mig.core.jobs import JobService
from mig.core.sweeps import (SweepService, combination, job_count, parse_parameters,
                             substitute)
from mig.errors import ClientError, MrslError
from mig.store.pickledb import PickleStore

TEMPLATE = "::EXECUTE::\necho +x+ +y+ +INDEX+\n\n::OUTPUTFILES::\nout.txt out-+x+-+y+.txt\n"


def test_parameters_lists_and_ranges():
    params = parse_parameters("x=a,b,c\ny=0:10:5\n")
    assert params["x"] == ["a", "b", "c"] and list(params["y"]) == [0, 5]
    assert job_count(params, "product") == 6
    assert [combination(params, "product", i) for i in range(3)] == [
        {"x": "a", "y": "0"}, {"x": "a", "y": "5"}, {"x": "b", "y": "0"}]
    assert combination(params, "product", 5) == {"x": "c", "y": "5"}
    zipped = parse_parameters({"x": ["a", "b"], "y": "1:3"})
    assert job_count(zipped, "zip") == 2 and combination(zipped, "zip", 1) == {"x": "b", "y": "2"}
    with pytest.raises(ClientError, match="same number of values"):
        job_count(params, "zip")


@pytest.mark.parametrize("text, message", [
    ("x=a b", "may only use"), ("x=../etc", "may only use"), ("1x=a", "invalid parameter name"),
    ("INDEX=1", "invalid parameter name"), ("x=0:10:0", "step"), ("", "at least one"),
    ("x=a\nx=b", "given twice"), ("x=0:2000000", "at most"),
])
def test_bad_parameters_are_refused(text, message):
    with pytest.raises(ClientError, match=message):
        parse_parameters(text)


def test_substitution_everywhere():
    assert substitute(TEMPLATE, {"x": "a", "y": "7"}, 3) == (
        "::EXECUTE::\necho a 7 3\n\n::OUTPUTFILES::\nout.txt out-a-7.txt\n")


@pytest.fixture
def service(tmp_path):
    store = PickleStore(str(tmp_path / "db"))
    jobs = JobService(store, "t.0")
    return SweepService(store, jobs), jobs, store


def test_create_checks_the_template(service):
    sweeps, _jobs, _store = service
    record = sweeps.create("alice", TEMPLATE, "x=a,b\ny=1:4")
    assert record["COUNT"] == 6 and record["STATUS"] == "ACTIVE"
    with pytest.raises(ClientError, match="not used in the job"):
        sweeps.create("alice", TEMPLATE, "x=a\ny=1\nz=3")
    with pytest.raises(MrslError, match="CPUTIME takes a whole number"):
        sweeps.create("alice", "::EXECUTE::\ntrue\n\n::CPUTIME::\n+t+\n", "t=10,abc,20")
    with pytest.raises(MrslError, match="job 0 of the sweep"):
        sweeps.create("alice", "::EXECUTE::\necho +x+\n\n::BOGUS::\n1\n", "x=1")
    again = sweeps.create("alice", TEMPLATE, "x=a\ny=1", idempotency_key="k1")
    assert sweeps.create("alice", TEMPLATE, "x=a\ny=1", idempotency_key="k1") is again


def test_jobs_are_made_lazily_and_survive_a_restart(service):
    sweeps, jobs, store = service
    record = sweeps.create("alice", TEMPLATE, "x=0:1000\ny=a")

    def make(owner, text, extra):
        from mig.core import jobspec
        jobs.submit(owner, jobspec.parse_job(text), text, extra=extra, durable=False)
    assert sweeps.top_up(make, window=50) == 50
    assert sweeps.top_up(make, window=50) == 0  # still 50 waiting
    counts = sweeps.counts(record)
    assert counts["QUEUED"] == 50 and counts["PENDING"] == 950
    again_jobs = JobService(store, "t.0")
    again = SweepService(store, again_jobs)
    assert again.counts(again.sweeps[record["SWEEP_ID"]])["PENDING"] == 950
    assert sweeps.cancel("alice", record["SWEEP_ID"]) == 50
    assert sweeps.top_up(make, window=50) == 0
    assert sweeps.counts(sweeps.sweeps[record["SWEEP_ID"]]) == {"CANCELED": 50, "PENDING": 0}
    with pytest.raises(ClientError):
        sweeps.get("bob", record["SWEEP_ID"])
