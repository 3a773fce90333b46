"""mig.core.scheduler: plain-words reasons per requirement, price expressions,
the FIFO/FirstFit/BestFit/FairFit policies and MAXFILL."""

import calendar

import pytest

from mig.core import scheduler
from mig.core.jobspec import parse_mrsl
from mig.core.resources import ExeUnit
from mig.core.scheduler import (apply_maxfill, eval_price, explain, fitness, fits, make_policy,
                                reasons, vgrid_match)

NOW = calendar.timegm((2025, 7, 2, 13, 0, 0))  # a Wednesday, 13:00 UTC


def job(**fields):
    spec = parse_mrsl("::EXECUTE::\necho hi\n")
    spec.update(fields)
    return spec


def unit(**fields):
    values = dict(resource="res.0", name="exe1", executor="local", architecture="AMD64",
                  nodecount=2, cpucount=8, memory=4096, disk=100, cputime=3600,
                  runtimeenvs=("PYTHON3", "GCC"), vgrids=("Generic",), platform="",
                  sandbox=False, jobtype="batch", minprice="0")
    values.update(fields)
    return ExeUnit(**values)


def record(job_id, queued=NOW, **fields):
    return {"JOB_ID": job_id, "SPEC": job(**fields), "QUEUED_TIMESTAMP": queued}


# ------------------------------------------------------------------------ reasons

def test_exact_fit_has_no_reasons():
    exact = job(RESOURCE=["res.0_exe1"], ARCHITECTURE="AMD64", JOBTYPE="batch",
                SANDBOX=False, PLATFORM="", NODECOUNT=2, CPUCOUNT=8, CPUTIME=3600,
                MEMORY=4096, DISK=100, RUNTIMEENVIRONMENT=["PYTHON3", "GCC"],
                VGRID=["Generic"], MAXPRICE="0")
    assert reasons(exact, unit(), NOW) == []
    assert fits(exact, unit(), NOW)
    assert reasons(job(), unit(), NOW) == []


@pytest.mark.parametrize("patterns,ok", [
    (["res.0_exe1"], True), (["res.0_*"], True), (["*_exe1"], True), (["res.?_exe?"], True),
    (["other", "res.0_exe[12]"], True), (["res.0"], False), (["RES.0_EXE1"], False),
    (["res.1_*"], False), (["*_exe2", "x*"], False),
])
def test_resource_patterns(patterns, ok):
    why = reasons(job(RESOURCE=patterns), unit(), NOW)
    if ok:
        assert why == []
    else:
        assert why == ["RESOURCE: res.0_exe1 matches none of the job's patterns %s"
                       % ", ".join(patterns)]


def test_architecture():
    assert reasons(job(ARCHITECTURE="X86"), unit(), NOW) == [
        "ARCHITECTURE: the job needs X86, the resource is AMD64"]
    assert reasons(job(ARCHITECTURE="X86"), unit(architecture=""), NOW) == [
        "ARCHITECTURE: the job needs X86, the resource is unspecified"]
    assert reasons(job(ARCHITECTURE=""), unit(architecture="X86"), NOW) == []
    assert reasons(job(ARCHITECTURE="AMD64"), unit(), NOW) == []


@pytest.mark.parametrize("job_type,unit_type,ok", [
    ("batch", "batch", True), ("bulk", "bulk", True), ("batch", "bulk", True),
    ("bulk", "batch", False), ("batch", "all", True), ("bulk", "all", True),
    ("interactive", "all", True), ("interactive", "batch", False),
    ("batch", "interactive", False),
])
def test_jobtype_rules(job_type, unit_type, ok):
    why = reasons(job(JOBTYPE=job_type), unit(jobtype=unit_type), NOW)
    if ok:
        assert why == []
    else:
        assert why == ["JOBTYPE: the job is %s, the resource takes %s jobs"
                       % (job_type, unit_type)]


@pytest.mark.parametrize("job_sandbox,unit_sandbox,ok", [
    (False, False, True), (True, False, True), (True, True, True), (False, True, False),
])
def test_sandbox(job_sandbox, unit_sandbox, ok):
    why = reasons(job(SANDBOX=job_sandbox), unit(sandbox=unit_sandbox), NOW)
    if ok:
        assert why == []
    else:
        assert len(why) == 1 and why[0].startswith("SANDBOX: ")
        assert "SANDBOX True" in why[0]


@pytest.mark.parametrize("job_platform,unit_platform,ok", [
    ("", "", True), ("ONE-CLICK", "one-click", True), ("linux", "LINUX", True),
    ("", "linux", False), ("linux", "", False), ("linux", "bsd", False),
])
def test_platform_case_insensitive(job_platform, unit_platform, ok):
    why = reasons(job(PLATFORM=job_platform), unit(platform=unit_platform), NOW)
    if ok:
        assert why == []
    else:
        assert why == ["PLATFORM: the job needs %r, the resource has %r"
                       % (job_platform, unit_platform)]


@pytest.mark.parametrize("key,value,text", [
    ("NODECOUNT", 3, "NODECOUNT: the job asks for 3 nodes, the resource offers 2"),
    ("CPUCOUNT", 9, "CPUCOUNT: the job asks for 9 cores per node, the resource offers 8"),
    ("CPUTIME", 3601, "CPUTIME: the job asks for 3601 seconds of wall time, the resource "
                      "offers at most 3600"),
    ("MEMORY", 4097, "MEMORY: the job asks for 4097 MB of memory, the resource offers 4096"),
    ("DISK", 101, "DISK: the job asks for 101 GB of disk, the resource offers 100"),
])
def test_numeric_requirements(key, value, text):
    assert reasons(job(**{key: value}), unit(), NOW) == [text]
    assert reasons(job(**{key: value - 1}), unit(), NOW) == []


def test_runtime_environments():
    assert reasons(job(RUNTIMEENVIRONMENT=["PYTHON3"]), unit(), NOW) == []
    assert reasons(job(RUNTIMEENVIRONMENT=["PYTHON3", "JAVA", "R"]), unit(), NOW) == [
        "RUNTIMEENVIRONMENT: the resource does not offer JAVA, R"]
    assert reasons(job(RUNTIMEENVIRONMENT=["PYTHON3"]), unit(runtimeenvs=()), NOW) == [
        "RUNTIMEENVIRONMENT: the resource does not offer PYTHON3"]


@pytest.mark.parametrize("job_vgrids,unit_vgrids,ok", [
    ([], ("Generic",), True),
    (["Generic"], ("Generic",), True),
    (["A"], ("A",), True),
    (["A"], ("A/B",), True),
    (["A/B"], ("A",), True),
    (["A/B/C"], ("A",), True),
    (["A/B"], ("A/C",), False),
    (["A"], ("AB",), False),
    (["AB"], ("A",), False),
    (["A"], ("Generic",), False),
    ([], ("A",), False),
    (["Generic"], ("Generic/sub",), False),
    (["Generic/sub"], ("Generic",), False),
    (["X", "A"], ("B", "A/sub"), True),
])
def test_vgrid_matching(job_vgrids, unit_vgrids, ok):
    why = reasons(job(VGRID=job_vgrids), unit(vgrids=unit_vgrids), NOW)
    if ok:
        assert why == []
    else:
        assert why == ["VGRID: the job runs in %s, the resource serves %s"
                       % (", ".join(job_vgrids or ["Generic"]), ", ".join(unit_vgrids))]


def test_vgrid_match_function():
    assert vgrid_match("A", "A/B") and vgrid_match("A/B", "A")
    assert not vgrid_match("Generic", "Generic/x")
    assert vgrid_match("Generic", "Generic")


def test_maxprice_vs_minprice():
    # 8 cores x 2 nodes x 3600 s = 16 CPU hours
    big = dict(CPUCOUNT=8, NODECOUNT=2, CPUTIME=3600)
    assert reasons(job(MAXPRICE="32", **big), unit(minprice="2"), NOW) == []
    assert reasons(job(MAXPRICE="31", **big), unit(minprice="2"), NOW) == [
        "MAXPRICE: the job offers 31, the resource asks 32 (16 CPU hours at 2)"]
    # a partial hour counts as a whole one
    assert reasons(job(MAXPRICE="1", CPUTIME=1), unit(minprice="1"), NOW) == []
    assert reasons(job(MAXPRICE="1", CPUTIME=3601), unit(minprice="1", cputime=7200), NOW) == [
        "MAXPRICE: the job offers 1, the resource asks 2 (2 CPU hours at 1)"]
    # expressions with the time names (13:00 UTC)
    assert reasons(job(MAXPRICE="hour-1"), unit(minprice="hour/13*12"), NOW) == []
    assert reasons(job(MAXPRICE="hour-2"), unit(minprice="hour/13*12"), NOW) == [
        "MAXPRICE: the job offers 11, the resource asks 12 (1 CPU hours at 12)"]
    # negative prices count as 0
    assert reasons(job(MAXPRICE="0"), unit(minprice="-5"), NOW) == []


def test_price_expressions_that_cannot_be_evaluated():
    assert reasons(job(MAXPRICE="__import__('os')"), unit(), NOW) == [
        "MAXPRICE: the expression \"__import__('os')\" cannot be evaluated"]
    assert reasons(job(MAXPRICE="1 +"), unit(), NOW) == [
        "MAXPRICE: the expression '1 +' cannot be evaluated"]
    assert reasons(job(), unit(minprice="os.system"), NOW) == [
        "MAXPRICE: the resource's MINPRICE cannot be evaluated"]


def test_maxprice_may_use_exec_delay():
    assert reasons(job(MAXPRICE="exec_delay/60"), unit(), NOW) == []


def test_minprice_may_use_runtime_environment_names():
    assert reasons(job(MAXPRICE="0"), unit(minprice="PYTHON3*5"), NOW) == []


def test_every_failing_requirement_is_listed_in_order():
    spec = job(RESOURCE=["x*"], ARCHITECTURE="X86", JOBTYPE="bulk", PLATFORM="p",
               NODECOUNT=3, RUNTIMEENVIRONMENT=["JAVA"], VGRID=["A"], MAXPRICE="1")
    why = reasons(spec, unit(sandbox=True, minprice="10"), NOW)
    assert [w.split(":")[0] for w in why] == [
        "RESOURCE", "ARCHITECTURE", "JOBTYPE", "SANDBOX", "PLATFORM", "NODECOUNT",
        "RUNTIMEENVIRONMENT", "VGRID", "MAXPRICE"]


def test_explain_includes_offline():
    units = [unit(), unit(name="exe2", online=False, down_reason="maintenance"),
             unit(name="exe3", cpucount=1, online=False)]
    report = explain(job(CPUCOUNT=2), units, NOW)
    assert report == {
        "res.0_exe1": [],
        "res.0_exe2": ["the resource is offline: maintenance"],
        "res.0_exe3": ["CPUCOUNT: the job asks for 2 cores per node, the resource offers 1",
                       "the resource is offline: stopped"],
    }


# --------------------------------------------------------------------- eval_price

@pytest.mark.parametrize("expression", [
    "__import__('os')", "a.b", "f(1)", "os.system('id')", "x", "2**3", "[1]", "'s'",
    "1 if 1 else 2", "lambda: 1", "1 < 2", "hour.real", "(1).real", "{}", "1/0",
    "9" * 201,
])
def test_eval_price_rejects(expression):
    with pytest.raises(ValueError):
        eval_price(expression, {"hour": 1})


@pytest.mark.parametrize("expression,value", [
    ("", 0.0), ("0", 0.0), ("12", 12.0), ("1.5", 1.5), ("1+2*3", 7.0), ("(1+2)*3", 9.0),
    ("-4/2", -2.0), ("+3", 3.0), ("hour*2 - yday", 10.0),
])
def test_eval_price_values(expression, value):
    assert eval_price(expression, {"hour": 6, "yday": 2}) == value


def test_price_names():
    assert scheduler.price_names(NOW) == {"hour": 13, "wday": 2, "yday": 183,
                                          "month": 7, "year": 2025, "date": 2}


# ----------------------------------------------------------------------- fitness

def test_fitness_values():
    u = unit(nodecount=1, cpucount=1, memory=1024, disk=0, cputime=86400)
    expected = 100 + 100 + 60 * 600 / 86400 + 30 * 64 / 1024 + 10 * 1.0
    assert fitness(job(), u) == pytest.approx(expected)
    assert fitness(job(SANDBOX=True), u) == pytest.approx(expected * 0.0001)
    assert fitness(job(SANDBOX=True), unit(nodecount=1, cpucount=1, memory=1024, disk=0,
                                           cputime=86400, sandbox=True)) == \
        pytest.approx(expected)


# ---------------------------------------------------------------------- policies

def ids(chosen):
    return None if chosen is None else chosen["JOB_ID"]


def test_fifo_blocks_on_unfit_head():
    u = unit()
    queue = [record("big", CPUCOUNT=64), record("small")]
    assert ids(make_policy("FIFO").choose(queue, u, NOW)) is None
    assert ids(make_policy("FIFO").choose(queue[1:], u, NOW)) == "small"
    assert ids(make_policy("FIFO").choose([], u, NOW)) is None


def test_firstfit_takes_first_fitting():
    u = unit()
    queue = [record("big", CPUCOUNT=64), record("a", CPUCOUNT=1), record("b", CPUCOUNT=8)]
    assert ids(make_policy("FirstFit").choose(queue, u, NOW)) == "a"
    assert ids(make_policy("FirstFit").choose(queue[:1], u, NOW)) is None


def test_bestfit_takes_highest_fitness():
    u = unit()
    queue = [record("big", CPUCOUNT=64), record("a", CPUCOUNT=1), record("b", CPUCOUNT=8),
             record("c", CPUCOUNT=4), record("s", CPUCOUNT=8, SANDBOX=True)]
    assert ids(make_policy("BestFit").choose(queue, u, NOW)) == "b"
    # ties keep queue order
    tie = [record("t1", CPUCOUNT=2), record("t2", CPUCOUNT=2)]
    assert ids(make_policy("BestFit").choose(tie, u, NOW)) == "t1"
    assert ids(make_policy("BestFit").choose(queue[:1], u, NOW)) is None
    # BestFit ignores waiting time
    old = [record("old", queued=NOW - 10 ** 6, CPUCOUNT=1), record("new", CPUCOUNT=2)]
    assert ids(make_policy("BestFit").choose(old, u, NOW)) == "new"


def test_fairfit_prefers_older_job_after_enough_waiting():
    u = unit()
    policy = make_policy("FairFit")
    # "new" fits better by 100 * (2 - 1) / 8 = 12.5 points
    gap = fitness(job(CPUCOUNT=2), u) - fitness(job(CPUCOUNT=1), u)
    assert gap == pytest.approx(12.5)
    bonus_per_second = 0.01 * (1 + 10.0 / 600)
    needed = gap / bonus_per_second
    short = [record("old", queued=NOW - needed * 0.9, CPUCOUNT=1),
             record("new", queued=NOW, CPUCOUNT=2)]
    assert ids(policy.choose(short, u, NOW)) == "new"
    long_ = [record("old", queued=NOW - needed * 1.1, CPUCOUNT=1),
             record("new", queued=NOW, CPUCOUNT=2)]
    assert ids(policy.choose(long_, u, NOW)) == "old"
    # the score itself
    assert policy.score(long_[0], u, NOW) == pytest.approx(
        fitness(job(CPUCOUNT=1), u) + needed * 1.1 * bonus_per_second)
    # a queued time in the future gives no bonus; unfit jobs are never chosen
    future = [record("f", queued=NOW + 1000, CPUCOUNT=1)]
    assert policy.score(future[0], u, NOW) == pytest.approx(fitness(job(CPUCOUNT=1), u))
    unfit = [record("old", queued=NOW - 10 ** 7, CPUCOUNT=64), record("new", CPUCOUNT=2)]
    assert ids(policy.choose(unfit, u, NOW)) == "new"


def test_fairfit_short_jobs_age_faster():
    u = unit()
    policy = make_policy("fairfit")
    short = record("short", queued=NOW - 1000, CPUTIME=10)
    long_ = record("long", queued=NOW - 1000, CPUTIME=600)
    bonus_short = policy.score(short, u, NOW) - fitness(short["SPEC"], u)
    bonus_long = policy.score(long_, u, NOW) - fitness(long_["SPEC"], u)
    assert bonus_short == pytest.approx(0.01 * 1000 * 2)
    assert bonus_long == pytest.approx(0.01 * 1000 * (1 + 10 / 600))


@pytest.mark.parametrize("name,cls", [
    ("FIFO", scheduler.FifoPolicy), ("fifo", scheduler.FifoPolicy),
    ("FirstFit", scheduler.FirstFitPolicy), ("FIRSTFIT", scheduler.FirstFitPolicy),
    ("bestfit", scheduler.BestFitPolicy), ("FairFit", scheduler.FairFitPolicy),
    ("fAIRfIT", scheduler.FairFitPolicy),
])
def test_make_policy_case_insensitive(name, cls):
    assert type(make_policy(name)) is cls


@pytest.mark.parametrize("name", ["", None, "Random", "fair fit", "FairFit ", "best"])
def test_make_policy_rejects_unknown(name):
    with pytest.raises(ValueError) as info:
        make_policy(name)
    assert "FIFO" in str(info.value) and "FairFit" in str(info.value)


# ----------------------------------------------------------------------- maxfill

def test_apply_maxfill_raises_listed_fields():
    u = unit(nodecount=2, cpucount=8, memory=4096, disk=100, cputime=3600)
    spec = job(MAXFILL=["CPUTIME", "MEMORY"], CPUTIME=60, MEMORY=128, CPUCOUNT=1, DISK=1)
    filled = apply_maxfill(spec, u)
    assert filled["CPUTIME"] == 3600
    assert filled["MEMORY"] == 4096
    assert filled["CPUCOUNT"] == 1
    assert filled["DISK"] == 1
    assert spec["CPUTIME"] == 60 and spec["MEMORY"] == 128  # the input is untouched
    everything = apply_maxfill(job(MAXFILL=["CPUTIME", "NODECOUNT", "CPUCOUNT", "MEMORY",
                                            "DISK"]), u)
    assert [everything[k] for k in ("CPUTIME", "NODECOUNT", "CPUCOUNT", "MEMORY", "DISK")] \
        == [3600, 2, 8, 4096, 100]
    assert apply_maxfill(job(), u) == job()
