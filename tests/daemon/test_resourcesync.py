"""The running grid follows the resource records (ResourceSync), a stopped unit
gets no jobs from the real grid daemon, and the keep-alive takes unreachable
resources out and brings them back (KeepAlive driven by tick)."""

import queue

from mig.core import jobs as J
from mig.core import jobspec
from mig.core.jobs import JobService
from mig.core.resourcedb import ResourceDB
from mig.core.resources import ExeUnit, ResourceRegistry
from mig.core.scheduler import make_policy
from mig.daemon.gridd import GridDaemon
from mig.daemon.keepalive import PREFIX, KeepAlive
from mig.daemon.resourcesync import STOPPED_REASON, ResourceSync
from mig.execute.base import Executor
from mig.store.pickledb import PickleStore
from conftest import resource_conf

CONF = resource_conf("node.example.org", ["name=exe0", "slots=2"], ["name=exe1"], key=None,
                     identifier=False, after=[("MEMORY", "2048")])
NAME = "node.example.org.0"


class Remotes:
    """Stands in for the ssh executor's list of resources: what it was told."""

    def __init__(self):
        self.calls = []

    def __call__(self, confs):
        self.calls.append(sorted(confs))


def make_sync(tmp_path):
    resources = ResourceDB(PickleStore(str(tmp_path / "db")))
    registry, remotes = ResourceRegistry(), Remotes()
    pokes = []
    sync = ResourceSync(resources, registry, remotes, on_change=lambda: pokes.append(1))
    return resources, registry, remotes, sync, pokes


def test_units_follow_the_records(tmp_path):
    resources, registry, remotes, sync, pokes = make_sync(tmp_path)
    sync.check()
    assert registry.all() == [] and remotes.calls == [[]]
    resources.add(CONF, "alice")
    sync.check()
    assert sorted(u.unit_id for u in registry.all()) == [NAME + "_exe0", NAME + "_exe1"]
    assert remotes.calls[-1] == [NAME] and pokes
    calls = len(remotes.calls)
    sync.check()
    assert len(remotes.calls) == calls  # nothing changed: nothing redone

    unit = registry.get(NAME + "_exe0")
    unit.running.add("job-1")
    unit.last_seen = 123.0
    generation = registry.generation
    resources.update(NAME, CONF.replace("2048", "4096").replace("slots=2", "slots=5"))
    sync.check()
    assert registry.get(NAME + "_exe0") is unit  # changed in place: its life stays
    assert unit.memory == 4096 and unit.slots == 5
    assert unit.running == {"job-1"} and unit.last_seen == 123.0
    assert registry.generation > generation  # the scheduler's fit caches are redone

    resources.update(NAME, CONF.replace("\n::EXECONFIG::\nname=exe1\n", ""))
    sync.check()
    assert [u.unit_id for u in registry.all()] == [NAME + "_exe0"]
    resources.remove(NAME)
    sync.check()
    assert registry.all() == [] and remotes.calls[-1] == []


def test_stop_and_start(tmp_path):
    resources, registry, _remotes, sync, _pokes = make_sync(tmp_path)
    resources.add(CONF, "alice")
    resources.set_stopped(NAME, "exe1", True)
    sync.check()
    stopped, running = registry.get(NAME + "_exe1"), registry.get(NAME + "_exe0")
    assert (stopped.online, stopped.down_reason, stopped.free_slots()) == (
        False, STOPPED_REASON, 0)
    assert running.online and running.free_slots() == 2
    stopped.mark_down("ssh: connection refused", 1000.0)  # a job that ran there failed
    assert (stopped.online, stopped.down_reason, stopped.down_until) == (
        False, STOPPED_REASON, 0.0)  # no back-off that would bring it back
    stopped.mark_up()
    assert not stopped.online and stopped.free_slots() == 0
    resources.set_stopped(NAME, None, False)
    sync.check()
    assert stopped.online and stopped.down_reason == "" and stopped.free_slots() == 1


class Recorder(Executor):
    kind = "ssh"

    def __init__(self):
        self.started = queue.Queue()

    def start(self, record, unit, done):
        self.started.put((record["JOB_ID"], unit.unit_id))

    def cancel(self, job_id):
        pass


def test_the_grid_daemon_gives_a_stopped_unit_no_jobs(tmp_path):
    resources, registry, _remotes, sync, _pokes = make_sync(tmp_path)
    resources.add(CONF.replace("\n::EXECONFIG::\nname=exe1\n", ""), "alice")
    resources.set_stopped(NAME, "exe0", True)
    sync.check()
    jobs = JobService(PickleStore(str(tmp_path / "jobs")), "test.0", job_retries=2)
    executor = Recorder()
    daemon = GridDaemon(jobs, registry, make_policy("FairFit"), {"ssh": executor},
                        tick_seconds=0)
    text = "::EXECUTE::\ntrue\n"
    job_id = jobs.submit("alice", jobspec.parse_mrsl(text), text)["JOB_ID"]
    for now in (1e9, 1e9 + 10_000):  # long after any back-off
        daemon.tick(now)
    assert executor.started.empty() and jobs.record(job_id)["STATUS"] == J.QUEUED
    resources.set_stopped(NAME, "exe0", False)
    sync.check()
    daemon.tick(1e9 + 20_000)
    assert executor.started.get_nowait() == (job_id, NAME + "_exe0")


def keepalive_units():
    registry = ResourceRegistry()
    for resource, name in (("a.0", "exe"), ("a.0", "gpu"), ("b.0", "exe"), ("c.0", "exe")):
        registry.add(ExeUnit(resource, name, "ssh"))
    registry.add(ExeUnit("localhost.0", "local", "local"))
    return registry


def test_keepalive_takes_unreachable_resources_out_and_back(tmp_path):
    registry = keepalive_units()
    answers = {"a.0": None, "b.0": "Connection refused", "c.0": None}
    probed = []

    def probe(name):
        probed.append(name)
        return answers[name]
    pokes = []
    alive = KeepAlive(registry, probe, interval=60, on_change=lambda: pokes.append(1))
    registry.get("c.0_exe").stop(STOPPED_REASON)
    registry.get("a.0_gpu").mark_down("RESOURCE DIED: no space left", 900.0)
    assert alive.tick(1000.0) == {"a.0": None, "b.0": "Connection refused"}
    assert sorted(probed) == ["a.0", "b.0"]  # one probe per resource, none for stopped ones
    a_exe, a_gpu, b_exe = (registry.get(u) for u in ("a.0_exe", "a.0_gpu", "b.0_exe"))
    assert a_exe.online and a_exe.last_seen == 1000.0
    assert not a_gpu.online and a_gpu.last_seen == 1000.0  # a login is not a working job
    assert not b_exe.online and b_exe.down_reason == PREFIX + "Connection refused"
    assert b_exe.down_until >= 1000.0 + 120  # down until a probe succeeds
    assert b_exe.free_slots() == 0 and not pokes

    answers["b.0"] = None
    alive.tick(1060.0)
    assert b_exe.online and b_exe.down_reason == "" and b_exe.last_seen == 1060.0 and pokes
    assert registry.get("c.0_exe").down_reason == STOPPED_REASON


def test_a_broken_probe_is_a_reason_not_a_crash():
    registry = keepalive_units()

    def probe(name):
        raise OSError("no ssh here")
    assert KeepAlive(registry, probe).tick(5.0)["a.0"] == "probe failed: no ssh here"
    assert not registry.get("a.0_exe").online
