"""Matching jobs to execution units, the scheduling policies, and "why not".

Pure functions over job specs and ``ExeUnit`` records: no threads, no I/O.
``reasons()`` says in plain words why a job cannot run on a unit (as
NorduGrid's broker does); a job fits exactly when the list is empty.  The
policies pick, for a unit with a free slot, which queued job runs next.
"""

import ast
import functools
import fnmatch
import math
import operator
import time

from mig.core.jobqueue import JobQueue
from mig.core.keywords import DEFAULT_VGRID

_NUMERIC_REQUIREMENTS = (
    ("NODECOUNT", "nodecount", "nodes", ""),
    ("CPUCOUNT", "cpucount", "cores per node", ""),
    ("CPUTIME", "cputime", "seconds of wall time", " at most"),
    ("MEMORY", "memory", "MB of memory", ""),
    ("DISK", "disk", "GB of disk", ""),
)
_BESTFIT_WEIGHTS = {"CPUCOUNT": 100, "NODECOUNT": 100, "CPUTIME": 60, "MEMORY": 30, "DISK": 10}
_ATTR = {"CPUCOUNT": "cpucount", "NODECOUNT": "nodecount", "CPUTIME": "cputime",
         "MEMORY": "memory", "DISK": "disk"}


def job_vgrids(spec):
    return spec.get("VGRID") or [DEFAULT_VGRID]


def vgrid_match(job_vgrid, unit_vgrid):
    """A VGrid matches itself and its sub-VGrids both ways ('A' ~ 'A/B')."""
    if job_vgrid == unit_vgrid:
        return True
    if DEFAULT_VGRID in (job_vgrid, unit_vgrid):
        return False
    return unit_vgrid.startswith(job_vgrid + "/") or job_vgrid.startswith(unit_vgrid + "/")


def reaches(unit, vgrids):
    """Whether the unit serves (and was accepted by) one of vgrids: what a user
    whose VGrids these are can use (NorduGrid's per-user view)."""
    serving = [u for u in unit.vgrids if u not in unit.vgrids_waiting]
    return any(vgrid_match(v, u) for v in vgrids for u in serving)


def vgrid_reasons(spec, unit):
    """Why none of the job's VGrids meets one the unit serves: the unit does
    not list it, or lists it but that VGrid has not accepted the resource."""
    wanted = job_vgrids(spec)
    serving = [u for u in unit.vgrids if u not in unit.vgrids_waiting]
    if any(vgrid_match(j, u) for j in wanted for u in serving):
        return []
    waiting = [u for u in unit.vgrids_waiting if any(vgrid_match(j, u) for j in wanted)]
    if waiting:
        return ["VGRID: the resource offers to serve %s, but %s has not accepted it as a "
                "resource (its owners add it with addvgridres)"
                % (", ".join(waiting), " and ".join(waiting))]
    return ["VGRID: the job runs in %s, the resource serves %s"
            % (", ".join(wanted), ", ".join(serving) or "no VGrid that accepted it")]


_PRICE_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv, ast.USub: operator.neg, ast.UAdd: operator.pos}


def eval_price(expression, names):
    """Evaluate a price expression with numbers, + - * / and known names only."""
    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in names:
            return float(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _PRICE_OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError("division by zero")
            return _PRICE_OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _PRICE_OPS:
            return _PRICE_OPS[type(node.op)](walk(node.operand))
        raise ValueError("unsupported price expression")
    if len(expression) > 200:
        raise ValueError("price expression too long")
    try:
        return float(expression or "0")  # the common case: a plain number
    except ValueError:
        return walk(_parse_price(expression))


@functools.lru_cache(maxsize=1024)
def _parse_price(expression):
    return ast.parse(expression, mode="eval")


def price_names(now=None):
    t = time.gmtime(now)
    return {"hour": t.tm_hour, "wday": t.tm_wday, "yday": t.tm_yday,
            "month": t.tm_mon, "year": t.tm_year, "date": t.tm_mday}


def price_reason(spec, unit, now=None, exec_delay=0):
    names = price_names(now)
    job_names = dict(names, exec_delay=exec_delay)
    unit_names = dict(names)
    unit_names.update({re: (1 if re in spec.get("RUNTIMEENVIRONMENT", []) else 0)
                       for re in unit.runtimeenvs})
    try:
        offered = max(0.0, eval_price(str(spec.get("MAXPRICE", "0")), job_names))
    except (ValueError, SyntaxError):
        return "MAXPRICE: the expression %r cannot be evaluated" % spec.get("MAXPRICE")
    try:
        unit_price = max(0.0, eval_price(str(unit.minprice or "0"), unit_names))
    except (ValueError, SyntaxError):
        return "MAXPRICE: the resource's MINPRICE cannot be evaluated"
    units = math.ceil(spec["CPUCOUNT"] * spec["NODECOUNT"] * spec["CPUTIME"] / 3600.0)
    if offered < units * unit_price:
        return ("MAXPRICE: the job offers %g, the resource asks %g (%d CPU hours at %g)"
                % (offered, units * unit_price, units, unit_price))
    return None


def reasons(spec, unit, now=None):
    """Plain-words reasons why spec cannot run on unit; empty when it fits."""
    why = []
    if spec.get("RESOURCE") and not any(
            fnmatch.fnmatchcase(unit.unit_id, pattern) for pattern in spec["RESOURCE"]):
        why.append("RESOURCE: %s matches none of the job's patterns %s"
                   % (unit.unit_id, ", ".join(spec["RESOURCE"])))
    arch = spec.get("ARCHITECTURE")
    if arch and arch != unit.architecture:
        why.append("ARCHITECTURE: the job needs %s, the resource is %s"
                   % (arch, unit.architecture or "unspecified"))
    jobtype = spec.get("JOBTYPE", "batch")
    if not (unit.jobtype == "all" or unit.jobtype == jobtype
            or (unit.jobtype == "bulk" and jobtype == "batch")):
        why.append("JOBTYPE: the job is %s, the resource takes %s jobs" % (jobtype, unit.jobtype))
    if unit.sandbox and not spec.get("SANDBOX"):
        why.append("SANDBOX: the resource is a volunteer sandbox and the job does not "
                   "allow sandboxes (set SANDBOX True)")
    if (spec.get("PLATFORM") or "").lower() != (unit.platform or "").lower():
        why.append("PLATFORM: the job needs %r, the resource has %r"
                   % (spec.get("PLATFORM") or "", unit.platform or ""))
    for key, attr, unit_text, limit in _NUMERIC_REQUIREMENTS:
        wanted, offered = int(spec.get(key, 0)), int(getattr(unit, attr))
        if wanted > offered:
            why.append("%s: the job asks for %d %s, the resource offers%s %d"
                       % (key, wanted, unit_text, limit, offered))
    missing = [re for re in spec.get("RUNTIMEENVIRONMENT", []) if re not in unit.runtimeenvs]
    if missing:
        why.append("RUNTIMEENVIRONMENT: the resource does not offer %s" % ", ".join(missing))
    why += vgrid_reasons(spec, unit)
    price = price_reason(spec, unit, now)
    if price:
        why.append(price)
    return why


def fits(spec, unit, now=None):
    return not reasons(spec, unit, now)


def explain(spec, units, now=None):
    """{unit_id: reasons} for every unit, plus whether any unit could ever run it."""
    report = {}
    for unit in units:
        why = reasons(spec, unit, now)
        if not unit.online:
            why = why + ["the resource is offline: %s" % (unit.down_reason or "stopped")]
        report[unit.unit_id] = why
    return report


def fitness(spec, unit):
    """MiG's BestFit score: how fully the job uses the unit."""
    score = 0.0
    for key, weight in _BESTFIT_WEIGHTS.items():
        offered = getattr(unit, _ATTR[key])
        score += weight * (float(spec.get(key, 0)) / offered if offered else 1.0)
    if bool(spec.get("SANDBOX")) != bool(unit.sandbox):
        score *= 0.0001
    return score


def apply_maxfill(spec, unit):
    """A copy of spec with MAXFILL fields raised to the unit's offer."""
    filled = dict(spec)
    for key in spec.get("MAXFILL", []):
        filled[key] = max(int(spec.get(key, 0)), int(getattr(unit, _ATTR[key])))
    return filled


def as_queue(queue):
    """Policies take a JobQueue; a plain list of records is wrapped for convenience."""
    return queue if isinstance(queue, JobQueue) else JobQueue.from_records(queue)


class Policy:
    """Picks the next job for a unit with a free slot, looking at one head per group."""

    name = "base"

    def choose(self, queue, unit, now, generation=None):
        """queue: a JobQueue (or records in queue order); returns a record or None."""
        queue = as_queue(queue)
        generation = object() if generation is None else generation

        def check(spec, exe_unit):
            return fits(spec, exe_unit, now)
        fitting = [(seq, record) for seq, record, group in queue.heads()
                   if group.fits(unit, generation, check)]
        return self.pick(queue, fitting, unit, now, generation)

    def pick(self, queue, fitting, unit, now, generation):
        raise NotImplementedError


class FifoPolicy(Policy):
    """Strict order: only the head of the queue; it blocks the line if it does not fit."""

    name = "FIFO"

    def choose(self, queue, unit, now, generation=None):
        queue = as_queue(queue)
        heads = queue.heads()
        if not heads:
            return None
        _seq, record, group = min(heads, key=lambda head: head[0])
        generation = object() if generation is None else generation
        return record if group.fits(unit, generation,
                                    lambda spec, u: fits(spec, u, now)) else None


class FirstFitPolicy(Policy):
    name = "FirstFit"

    def pick(self, queue, fitting, unit, now, generation):
        return min(fitting, key=lambda entry: entry[0])[1] if fitting else None


class BestFitPolicy(Policy):
    name = "BestFit"

    def score(self, record, unit, now):
        return fitness(record["SPEC"], unit)

    def pick(self, queue, fitting, unit, now, generation):
        best = None
        for seq, record in fitting:
            key = (self.score(record, unit, now), -seq)
            if best is None or key > best[0]:
                best = (key, record)
        return best[1] if best else None


class FairFitPolicy(BestFitPolicy):
    """BestFit plus an aging bonus so that small and old jobs are not starved.

    Within one group the oldest job has the largest bonus, so looking at the
    group heads is enough.
    """

    name = "FairFit"

    def score(self, record, unit, now):
        waited = max(0.0, now - record.get("QUEUED_TIMESTAMP", now))
        cputime = max(int(record["SPEC"].get("CPUTIME", 10)), 10)
        return fitness(record["SPEC"], unit) + 0.01 * waited * (1 + 10.0 / cputime)


POLICIES = {cls.name: cls for cls in (FifoPolicy, FirstFitPolicy, BestFitPolicy, FairFitPolicy)}


def make_policy(name):
    for key, cls in POLICIES.items():
        if key.lower() == (name or "").lower():
            return cls()
    raise ValueError("unknown scheduler policy %r: choose one of %s"
                     % (name, ", ".join(POLICIES)))
