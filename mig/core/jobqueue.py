"""The queue of waiting jobs, grouped by what they ask of a resource.

Jobs with the same requirements (a "signature") are interchangeable for
matching: they fit the same exe units and score the same fitness.  So the
queue keeps one FIFO per signature and caches, per group, which units it
fits.  A scheduling decision then looks at one head job per group instead
of every queued job, which keeps it fast with 100,000 jobs waiting.
"""

import itertools

_SIGNATURE_KEYS = ("RESOURCE", "ARCHITECTURE", "JOBTYPE", "SANDBOX", "PLATFORM", "NODECOUNT",
                   "CPUCOUNT", "CPUTIME", "MEMORY", "DISK", "RUNTIMEENVIRONMENT", "VGRID",
                   "MAXPRICE")


def signature(spec):
    """What matching depends on; jobs with equal signatures match alike."""
    parts = []
    for key in _SIGNATURE_KEYS:
        value = spec.get(key)
        parts.append(tuple(value) if isinstance(value, list) else value)
    return tuple(parts)


class Group:
    """Waiting jobs with one signature, oldest first, and their fit cache."""

    __slots__ = ("key", "spec", "jobs", "fit", "fit_generation")

    def __init__(self, key, spec):
        self.key, self.spec = key, spec
        self.jobs = {}  # job_id -> (seq, record), insertion order = queue order
        self.fit = {}
        self.fit_generation = None

    def head(self):
        for job_id in self.jobs:
            return self.jobs[job_id]
        return None

    def fits(self, unit, generation, check):
        """Cached check(spec, unit); the cache is dropped when the units change."""
        if self.fit_generation != generation:
            self.fit, self.fit_generation = {}, generation
        known = self.fit.get(unit.unit_id)
        if known is None:
            known = self.fit[unit.unit_id] = check(self.spec, unit)
        return known


class JobQueue:
    """Waiting jobs in queue order, grouped by signature; not thread-safe."""

    def __init__(self):
        self.groups = {}
        self.where = {}  # job_id -> group key
        self.counter = itertools.count()

    @classmethod
    def from_records(cls, records):
        queue = cls()
        for record in records:
            queue.add(record)
        return queue

    def __len__(self):
        return len(self.where)

    def __contains__(self, job_id):
        return job_id in self.where

    def add(self, record):
        """Append a job (a job already queued keeps its place, with the new record)."""
        job_id = record["JOB_ID"]
        key = self.where.get(job_id)
        if key is not None:
            group = self.groups[key]
            group.jobs[job_id] = (group.jobs[job_id][0], record)
            return
        key = signature(record["SPEC"])
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key, record["SPEC"])
        group.jobs[job_id] = (next(self.counter), record)
        self.where[job_id] = key

    def remove(self, job_id):
        key = self.where.pop(job_id, None)
        if key is None:
            return
        group = self.groups[key]
        group.jobs.pop(job_id, None)
        if not group.jobs:
            del self.groups[key]

    def records(self):
        """Every waiting record in queue order."""
        entries = [entry for group in self.groups.values() for entry in group.jobs.values()]
        entries.sort(key=lambda entry: entry[0])
        return [record for _seq, record in entries]

    def heads(self):
        """(seq, record, group) of each group's oldest job."""
        out = []
        for group in self.groups.values():
            seq, record = group.head()
            out.append((seq, record, group))
        return out
