"""How much of the disk each user's home uses, against the per-user quota.

Counting a large home takes a walk over every file, so the figure is kept
for a while and adjusted by what the appliance itself writes meanwhile
(job outputs); a walk that runs out of its time budget says so, and the
figure is then a lower bound.  The quota binds what the grid puts into a
home on the user's behalf (job outputs), and the Dashboard shows it.
"""

import os
import threading
import time

MB = 1024 * 1024


class Quota:
    """Per-user disk use and limit (limit_mb 0: no limit)."""

    def __init__(self, limit_mb=0, ttl=60.0, budget=0.5):
        self.limit = limit_mb * MB if limit_mb > 0 else None
        self.ttl, self.budget = ttl, budget
        self.lock = threading.Lock()
        self.cache = {}  # home root -> (when counted, bytes, complete)

    def usage(self, root):
        """(bytes used, whether the count is complete) for a home folder."""
        now = time.monotonic()
        with self.lock:
            cached = self.cache.get(root)
        if cached and now - cached[0] < self.ttl:
            return cached[1], cached[2]
        total, complete = self._count(root, now + self.budget)
        with self.lock:
            self.cache[root] = (now, total, complete)
        return total, complete

    def _count(self, root, deadline):
        total = 0
        stack = [root]
        while stack:
            try:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        total += info.st_size
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
            except OSError:
                continue
            if time.monotonic() > deadline:
                return total, False
        return total, True

    def room(self, root):
        """Bytes the home may still take, or None when there is no limit."""
        if self.limit is None:
            return None
        used, _complete = self.usage(root)
        return max(0, self.limit - used)

    def added(self, root, nbytes):
        """The appliance wrote nbytes into a home: count them until the next walk."""
        with self.lock:
            cached = self.cache.get(root)
            if cached:
                self.cache[root] = (cached[0], cached[1] + nbytes, cached[2])

    def describe(self, root):
        """'1.2 MB of 100.0 MB' style text for the Dashboard."""
        used, complete = self.usage(root)
        text = human_size(used) + ("" if complete else " (or more; still counting)")
        if self.limit is not None:
            text += " of %s (%d%%)" % (human_size(self.limit), used * 100 // self.limit)
        else:
            text += " (no quota)"
        return text


def human_size(size):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024.0
