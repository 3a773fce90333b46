"""Parameter sweeps (job collections): one job description, many jobs.

A sweep is stored as one record: the mRSL template, its parameters and how
they combine (product or zip).  Jobs are made from it lazily, a window at a
time, as the queue drains, so a 100,000-job sweep is accepted at once and
never floods the queue.  ``+name+`` is replaced by a parameter's value and
``+INDEX+`` by the job's index in the sweep, everywhere in the description.
"""

import re
import threading
import time

from mig.core import jobspec
from mig.core import jobs as J
from mig.errors import ClientError, MrslError, StateError

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
VALUE_RE = re.compile(r"^[A-Za-z0-9._+\-=,:@%]{0,200}$")
RESERVED = {"JOBID", "JOBNAME", "INDEX"}
MAX_JOBS = 1_000_000
INT_KEYWORDS = ("NODECOUNT", "CPUCOUNT", "CPUTIME", "MEMORY", "DISK", "RETRIES")
WINDOW = 500  # waiting jobs kept materialised per sweep


def parse_parameters(text):
    """'x=1,2,3' / 'n=0:100000[:step]' lines (or a dict) -> {name: [values]} in order."""
    params = {}
    items = text.items() if isinstance(text, dict) else (
        line.split("=", 1) for line in text.splitlines() if line.strip())
    for item in items:
        if len(item) != 2:
            raise ClientError("a parameter line is NAME=v1,v2,... or NAME=start:stop[:step]")
        name, spec = item[0].strip(), item[1]
        if not NAME_RE.match(name) or name.upper() in RESERVED:
            raise ClientError("invalid parameter name %r" % name)
        if name in params:
            raise ClientError("parameter %s is given twice" % name)
        params[name] = _values(name, spec)
    if not params:
        raise ClientError("a sweep needs at least one parameter")
    return params


def _values(name, spec):
    if isinstance(spec, (list, tuple)):
        values = [str(v) for v in spec]
    else:
        spec = str(spec).strip()
        if re.match(r"^-?\d+:-?\d+(:-?\d+)?$", spec):
            parts = [int(p) for p in spec.split(":")]
            step = parts[2] if len(parts) == 3 else 1
            if step == 0:
                raise ClientError("%s: the step of a range cannot be 0" % name)
            count = len(range(parts[0], parts[1], step))
            if count > MAX_JOBS:
                raise ClientError("%s: at most %d values" % (name, MAX_JOBS))
            return range(parts[0], parts[1], step)  # kept lazy: a range is cheap
        values = [v.strip() for v in spec.split(",")]
    if not values or len(values) > MAX_JOBS:
        raise ClientError("%s: give between 1 and %d values" % (name, MAX_JOBS))
    for value in values:
        if not VALUE_RE.match(value) or ".." in value:
            raise ClientError("%s: value %r may only use letters, digits and ._+-=,:@%%"
                              % (name, value))
    return values


def job_count(params, mode):
    sizes = [len(v) for v in params.values()]
    if mode == "zip":
        if len(set(sizes)) != 1:
            raise ClientError("zip mode needs parameters with the same number of values "
                              "(got %s)" % ", ".join(map(str, sizes)))
        return sizes[0]
    total = 1
    for size in sizes:
        total *= size
    return total


def combination(params, mode, index):
    """The parameter values of job number index, without building the whole list."""
    names = list(params)
    if mode == "zip":
        return {n: str(params[n][index]) for n in names}
    values = {}
    for name in reversed(names):
        column = params[name]
        index, position = divmod(index, len(column))
        values[name] = str(column[position])
    return values


def substitute(text, values, index):
    for name, value in values.items():
        text = text.replace("+%s+" % name, value)
    return text.replace("+INDEX+", str(index))


class SweepService:
    """Sweep records, lazy materialisation and per-sweep counts."""

    def __init__(self, store, jobs, clock=time.time):
        self.store, self.jobs, self.clock = store, jobs, clock
        self.lock = threading.Lock()
        self.sweeps = {}
        for owner in store.folders("sweeps"):
            for _name, path in store.records("sweeps/" + owner):
                record = store.read_file(path)
                self.sweeps[record["SWEEP_ID"]] = record
        self.counter = 1 + max([int(s.split("_")[1]) for s in self.sweeps] or [0])
        self.made = {}  # sweep id -> number of jobs made so far
        for sweep_id in self.sweeps:
            made = sum(jobs.sweep_counts(sweep_id).values())
            if made:
                self.made[sweep_id] = made

    def create(self, owner, text, params, mode="product", job_retries=4, idempotency_key=None):
        """Check and store a sweep; its jobs are made later.  Returns the record."""
        if mode not in ("product", "zip"):
            raise ClientError("mode must be product or zip")
        if isinstance(params, str) or isinstance(params, dict):
            params = parse_parameters(params)
        count = job_count(params, mode)
        if not 1 <= count <= MAX_JOBS:
            raise ClientError("a sweep makes between 1 and %d jobs, not %d" % (MAX_JOBS, count))
        if idempotency_key:
            for sweep in self.sweeps.values():
                if sweep["OWNER"] == owner and sweep.get("IDEMPOTENCY_KEY") == idempotency_key:
                    return sweep
        unknown = [n for n in params if "+%s+" % n not in text]
        if unknown:
            raise ClientError("parameter(s) %s are not used in the job: write +%s+ where "
                              "the value goes" % (", ".join(unknown), unknown[0]))
        self._check_template(text, params, mode, count, job_retries)
        with self.lock:
            sweep_id = "sweep_%d_%d" % (self.counter, int(self.clock()))
            self.counter += 1
            record = {"SWEEP_ID": sweep_id, "OWNER": owner, "TEMPLATE": text,
                      "PARAMS": params, "MODE": mode, "COUNT": count, "STATUS": "ACTIVE",
                      "CREATED": self.clock(), "IDEMPOTENCY_KEY": idempotency_key}
            self.store.write("sweeps/%s/%s" % (owner, sweep_id), record)
            self.sweeps[sweep_id] = record
            self.made[sweep_id] = 0
        return record

    @staticmethod
    def _check_template(text, params, mode, count, job_retries):
        for index in sorted({0, count - 1}):
            try:
                jobspec.parse_job(substitute(text, combination(params, mode, index), index),
                                  job_retries)
            except MrslError as exc:
                raise MrslError("job %d of the sweep: %s" % (index, exc.message)) from None
        for keyword in INT_KEYWORDS:
            block = re.search(r"::%s::[ \t]*\n([^\n]*)" % keyword, text)
            for name in params:
                if block and "+%s+" % name in block.group(1):
                    values = params[name]
                    bad = ([] if values.start >= 0 and values.stop >= 0 else [values.start]) \
                        if isinstance(values, range) else [v for v in values if not v.isdigit()]
                    if bad:
                        raise MrslError("%s takes a whole number, but %s has %r"
                                        % (keyword, name, bad[0]), keyword=keyword)

    def get(self, owner, sweep_id):
        sweep = self.sweeps.get(sweep_id)
        if sweep is None or sweep["OWNER"] != owner:
            raise ClientError("%s: You do not have any matching sweeps!" % sweep_id)
        return sweep

    def owned(self, owner):
        return [s for s in self.sweeps.values() if s["OWNER"] == owner]

    def top_up(self, submit, window=WINDOW):
        """Make more jobs for active sweeps whose waiting jobs ran low.

        submit(owner, text, extra) stores one job; returns how many were made.
        """
        made = 0
        for sweep in list(self.sweeps.values()):
            sweep_id = sweep["SWEEP_ID"]
            done = self.made.get(sweep_id, 0)
            if sweep["STATUS"] != "ACTIVE" or done >= sweep["COUNT"]:
                continue
            waiting = self.jobs.sweep_counts(sweep_id).get(J.QUEUED, 0) + \
                self.jobs.sweep_counts(sweep_id).get(J.RETRY, 0)
            want = min(window - waiting, sweep["COUNT"] - done)
            for index in range(done, done + max(0, want)):
                values = combination(sweep["PARAMS"], sweep["MODE"], index)
                submit(sweep["OWNER"], substitute(sweep["TEMPLATE"], values, index),
                       {"SWEEP": sweep_id, "SWEEP_INDEX": index})
                self.made[sweep_id] = index + 1
                made += 1
        return made

    def counts(self, sweep):
        """States of the jobs made so far, plus how many are still to be made."""
        counts = dict(self.jobs.sweep_counts(sweep["SWEEP_ID"]))
        counts["PENDING"] = sweep["COUNT"] - self.made.get(sweep["SWEEP_ID"], 0) \
            if sweep["STATUS"] == "ACTIVE" else 0
        return counts

    def cancel(self, owner, sweep_id):
        """Stop making jobs and cancel the waiting and running ones."""
        sweep = self.get(owner, sweep_id)
        sweep = dict(sweep, STATUS="CANCELED", CANCELED=self.clock())
        self.store.write("sweeps/%s/%s" % (owner, sweep_id), sweep)
        self.sweeps[sweep_id] = sweep
        cancelled = 0
        for job_id in self.jobs.sweep_job_ids(sweep_id):
            try:
                self.jobs.act(owner, job_id, "cancel")
                cancelled += 1
            except (StateError, ClientError):
                continue
        return cancelled

    def resubmit(self, owner, sweep_id, job_retries=4):
        sweep = self.get(owner, sweep_id)
        return self.create(owner, sweep["TEMPLATE"], sweep["PARAMS"], sweep["MODE"], job_retries)

