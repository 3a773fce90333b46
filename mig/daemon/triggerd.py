"""Finds the changes in the VGrids' shared folders that fire their triggers.

Every few seconds the shared folder of each VGrid that has trigger rules is
listed (names starting with '.' are skipped: temporary files of uploads and
of the atomic writer), and compared with the listing before: a new name is
``created``, a changed size or modification time is ``modified``.  A
matching rule fires once the file has stayed unchanged for its settle time,
within its rate limit, if its owner is still in the VGrid: the rule's job
template (read when the rule was added) is expanded and submitted as the
rule's owner.
Each firing, skip and failure goes to the VGrid's trigger log; a failure is
also told to the rule's owner (inbox, and mail where set up).

The first listing after the appliance starts is the baseline: changes made
while it was down fire nothing.
"""

import logging
import os
import stat
import time

from mig.core.triggers import expand, matches, within_rate
from mig.daemon.periodic import Periodic
from mig.errors import MigError

log = logging.getLogger("mig.triggers")

MAX_ENTRIES = 20000  # names listed per shared folder and round


def scan(folder, limit=MAX_ENTRIES):
    """{path below folder: (mtime_ns, size)} of the regular files, no link followed."""
    found, stack = {}, [""]
    while stack and len(found) < limit:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(folder, rel)) as listing:
                for entry in listing:
                    if entry.name.startswith("."):
                        continue
                    path = entry.name if not rel else rel + "/" + entry.name
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(path)
                    elif stat.S_ISREG(info.st_mode):
                        found[path] = (info.st_mtime_ns, info.st_size)
        except OSError:
            continue
    return found


class TriggerDaemon:
    """vgrids: the VGridDB; rules: its TriggerRules; submit(owner, text) -> job id
    (raises MigError); tell(user, subject, text): a notice to a user."""

    def __init__(self, vgrids, rules, submit, tell, interval=2.0, clock=time.time):
        self.vgrids, self.rules, self.submit, self.tell = vgrids, rules, submit, tell
        self.clock = clock
        self.seen = {}  # VGrid -> {path: (mtime_ns, size)}
        self.pending = {}  # (VGrid, rule id, path) -> {"change", "since", "key"}
        self.fired = {}  # (VGrid, rule id) -> times it fired (for the rate limit)
        self.checked = {}  # VGrid -> (listings taken since its first rule, when the last)
        self.periodic = Periodic("triggers", interval, self.tick, "trigger scan", log)

    def start(self):
        self.periodic.start()

    def stop(self):
        self.periodic.stop(timeout=10)

    def tick(self, now=None):
        now = self.clock() if now is None else now
        for name, rules in sorted(self.rules.every_rule().items()):
            if not rules:
                self.seen.pop(name, None)
                self.checked.pop(name, None)
                continue
            current = scan(self.vgrids.shared_folder(name))
            before = self.seen.get(name)
            self.seen[name] = current
            self.checked[name] = (self.checked.get(name, (0, 0))[0] + 1, now)
            if before is not None:
                self._note_changes(name, rules, before, current, now)
            self._fire_settled(name, rules, current, now)

    def _note_changes(self, name, rules, before, current, now):
        for path, key in current.items():
            old = before.get(path)
            if old == key:
                continue
            change = "created" if old is None else "modified"
            for rule in rules:
                if change in rule["changes"] and matches(rule, path):
                    waiting = self.pending.get((name, rule["rule_id"], path))
                    self.pending[(name, rule["rule_id"], path)] = {
                        "change": waiting["change"] if waiting else change,
                        "since": now, "key": key}

    def _fire_settled(self, name, rules, current, now):
        by_id = {r["rule_id"]: r for r in rules}
        for (vgrid, rule_id, path), waiting in list(self.pending.items()):
            if vgrid != name:
                continue
            rule = by_id.get(rule_id)
            key = current.get(path)
            if rule is None or key is None:  # the rule or the file went away
                del self.pending[(vgrid, rule_id, path)]
                continue
            if key != waiting["key"]:
                waiting.update(key=key, since=now)
                continue
            if now - waiting["since"] < rule["settle_time"]:
                continue
            del self.pending[(vgrid, rule_id, path)]
            self._fire(name, rule, path, waiting["change"], now)

    def _fire(self, name, rule, path, change, now):
        entry = {"time": now, "rule_id": rule["rule_id"], "path": path, "change": change,
                 "owner": rule["owner"], "job_id": "", "result": ""}
        times = [t for t in self.fired.get((name, rule["rule_id"]), []) if now - t < 86400]
        if not within_rate(rule, times, now):
            entry["result"] = "skipped: over the rate limit %s" % rule["rate_limit"]
        elif not self.vgrids.is_member(rule["owner"], name):
            entry["result"] = "skipped: %s is no longer in %s" % (rule["owner"], name)
        else:
            try:
                entry["job_id"] = self.submit(rule["owner"],
                                              expand(rule["template"], name, path, change))
                entry["result"] = "submitted"
                times.append(now)
            except MigError as exc:
                entry["result"] = "failed: %s" % exc.message
                self.tell(rule["owner"], "Trigger %s of %s failed" % (rule["rule_id"], name),
                          "The trigger %s fired for %s/%s (%s) but no job was submitted: %s"
                          % (rule["rule_id"], name, path, change, exc.message))
        self.fired[(name, rule["rule_id"])] = times
        self.rules.record(name, entry)
