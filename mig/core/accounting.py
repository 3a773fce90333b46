"""Accounting: the CPU time jobs used, per user, per VGrid and per resource,
and so the time each resource's owners contributed, day by day.

A run counts when it ends (FINISHED, FAILED, CANCELED, or RETRY after a
failed attempt): its wall time from start to end times the cores it held
(CPUCOUNT x NODECOUNT).  The VGrid is the first of the job's VGrids that
the resource serves.  Runs are added up in memory and written every few
seconds (``flush``), one record per month (``accounting/YYYY-MM``), so the
job path never waits for a disk write; a crash loses at most the runs of
the last few seconds.
"""

import threading
import time

from mig.core import jobs as J

KINDS = ("user", "vgrid", "resource", "owner")
ENDS = (J.FINISHED, J.FAILED, J.CANCELED, J.RETRY)


def _add(target, kinds):
    """Add {kind: {name: seconds}} into target (the same shape)."""
    for kind, counts in kinds.items():
        into = target.setdefault(kind, {})
        for key, seconds in counts.items():
            into[key] = into.get(key, 0.0) + seconds


def _day(when):
    return time.strftime("%Y-%m-%d", time.gmtime(when))


class Accounting:
    """store: the PickleStore; owners_of(resource) -> [user]: who contributed it."""

    def __init__(self, store, owners_of, clock=time.time):
        self.store, self.owners_of, self.clock = store, owners_of, clock
        self.lock = threading.Lock()
        self.pending = {}  # day -> kind -> name -> seconds

    # -- counting ----------------------------------------------------------------------
    def __call__(self, job_id, old, new, record):
        """A job store listener: a run that ended counts."""
        if old != J.EXECUTING or new not in ENDS or not record:
            return
        started = record.get("EXECUTING_TIMESTAMP")
        if not started:
            return
        now = self.clock()
        spec = record.get("SPEC") or {}
        cores = max(1, int(spec.get("CPUCOUNT", 1) or 1)) * max(1, int(spec.get("NODECOUNT", 1)
                                                                      or 1))
        seconds = max(0.0, now - started) * cores
        resource = record.get("UNIQUE_RESOURCE_NAME") or "-"
        vgrid = (spec.get("VGRID") or ["Generic"])[0]
        names = {"user": [record.get("OWNER", "-")], "vgrid": [vgrid], "resource": [resource],
                 "owner": self.owners_of(resource)}
        with self.lock:
            day = self.pending.setdefault(_day(now), {})
            for kind, keys in names.items():
                counts = day.setdefault(kind, {})
                for key in keys:
                    counts[key] = counts.get(key, 0.0) + seconds

    def flush(self):
        """Write what was counted since the last flush (one update per month touched).
        A month that cannot be written (a full disk, a failed sync) is kept in
        memory for the next flush, and the error raised."""
        with self.lock:
            pending, self.pending = self.pending, {}
        by_month = {}
        for day, kinds in pending.items():
            by_month.setdefault(day[:7], {})[day] = kinds
        failed = None
        for month, days in sorted(by_month.items()):
            def change(old, days=days):
                record = {d: {k: dict(v) for k, v in kinds.items()}
                          for d, kinds in (old or {}).items()}
                for day, kinds in days.items():
                    _add(record.setdefault(day, {}), kinds)
                return record
            try:
                self.store.update("accounting/%s" % month, change, {})
            except Exception as exc:  # kept for the next flush, and raised below
                failed = failed or exc
                with self.lock:
                    for day, kinds in days.items():
                        _add(self.pending.setdefault(day, {}), kinds)
        if failed is not None:
            raise failed

    # -- reading -----------------------------------------------------------------------
    def days(self, first, last):
        """{day: {kind: {name: seconds}}} from first to last (UTC dates, inclusive),
        what is not yet written included."""
        found = {}
        month, end = first[:7], last[:7]
        while month <= end:
            for day, kinds in self.store.read("accounting/%s" % month, {}).items():
                if first <= day <= last:
                    found[day] = {k: dict(v) for k, v in kinds.items()}
            year, number = int(month[:4]), int(month[5:7]) + 1
            month = "%04d-%02d" % (year + (number > 12), 1 if number > 12 else number)
        with self.lock:
            for day, kinds in self.pending.items():
                if first <= day <= last:
                    _add(found.setdefault(day, {}), kinds)
        return found
