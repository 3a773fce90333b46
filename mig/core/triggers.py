"""VGrid triggers (MiG's VGrid workflows): rules that submit a job from a
template when a file matching a pattern is created or changed in a VGrid's
shared folder.

A rule: ``rule_id``, ``path`` (an fnmatch pattern relative to the shared
folder, e.g. ``incoming/*.csv``), ``changes`` (``created``, ``modified``),
``arguments`` (the job template: an mRSL file in the shared folder, read
when the rule is added and kept with it),
``rate_limit`` (``N/s``, ``N/m``, ``N/h`` or ``N/d``: at most N jobs in that
time, the rest logged as skipped), ``settle_time`` (seconds a file must stay
unchanged before the rule fires) and its owner (who made it: the jobs are
theirs).  The template may use ``+TRIGGERPATH+`` (the file's path in the
home, e.g. ``Lab/incoming/a.csv``), ``+TRIGGERFILENAME+``,
``+TRIGGERDIRNAME+``, ``+TRIGGERRELPATH+`` (below the shared folder),
``+TRIGGERCHANGE+`` and ``+TRIGGERVGRIDNAME+``.

Rules and the log of what fired live in the VGrid's record; the scanner
(mig/daemon/triggerd.py) finds the changes.
"""

import fnmatch
import re
import time

from mig.core.beneath import open_beneath
from mig.errors import AccessDenied, ClientError, ConflictError, InvalidArgument

CHANGES = ("created", "modified")
RULE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
RATE = re.compile(r"^(\d{1,6})/([smhd])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_RULES = 50
MAX_LOG = 200
MAX_TEMPLATE = 256 * 1024


def check_rule(rule_id, path, changes, arguments, rate_limit, settle_time):
    """A checked rule from backend fields, or InvalidArgument naming the field."""
    if not RULE_ID.match(rule_id or ""):
        raise InvalidArgument("rule_id: letters, digits, '_', '.' or '-', at most 64")
    path = (path or "").strip().lstrip("/")
    if not path or ".." in path.split("/") or "\x00" in path:
        raise InvalidArgument("path: a pattern below the shared folder, such as incoming/*.csv")
    changes = [c.strip().lower() for c in changes if c.strip()] or ["created", "modified"]
    unknown = [c for c in changes if c not in CHANGES]
    if unknown:
        raise InvalidArgument("changes: %s (use created and/or modified)" % ", ".join(unknown))
    arguments = (arguments or "").strip().lstrip("/")
    if not arguments or ".." in arguments.split("/"):
        raise InvalidArgument("arguments: the job template, an mRSL file in the shared folder")
    if rate_limit and not RATE.match(rate_limit):
        raise InvalidArgument("rate_limit: N/s, N/m, N/h or N/d, e.g. 10/m")
    try:
        settle = float(settle_time or 0)
    except ValueError:
        raise InvalidArgument("settle_time: seconds") from None
    if not 0 <= settle <= 86400:
        raise InvalidArgument("settle_time: 0 to 86400 seconds")
    return {"rule_id": rule_id, "path": path, "changes": changes, "action": "submit",
            "arguments": arguments, "rate_limit": rate_limit or "", "settle_time": settle}


def matches(rule, relpath):
    """Whether a file's path below the shared folder matches the rule's pattern
    (a pattern without '/' matches a name anywhere, as MiG's)."""
    if fnmatch.fnmatchcase(relpath, rule["path"]):
        return True
    return "/" not in rule["path"] and fnmatch.fnmatchcase(relpath.rsplit("/", 1)[-1],
                                                           rule["path"])


def expand(template, vgrid, relpath, change):
    """The job text for one firing."""
    home_path = "%s/%s" % (vgrid, relpath)
    values = {"+TRIGGERPATH+": home_path, "+TRIGGERRELPATH+": relpath,
              "+TRIGGERFILENAME+": relpath.rsplit("/", 1)[-1],
              "+TRIGGERDIRNAME+": home_path.rsplit("/", 1)[0],
              "+TRIGGERCHANGE+": change, "+TRIGGERVGRIDNAME+": vgrid}
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def within_rate(rule, fired_times, now):
    """Whether one more job fits the rule's rate limit, given when it fired before."""
    found = RATE.match(rule.get("rate_limit") or "")
    if not found:
        return True
    count, window = int(found.group(1)), SECONDS[found.group(2)]
    return sum(1 for t in fired_times if now - t < window) < count


def read_template(folder, rel, vgrid):
    """A rule's job template from the shared folder (no link followed, bounded)."""
    try:
        with open_beneath(folder, rel) as handle:
            data = handle.read(MAX_TEMPLATE + 1)
    except OSError:
        raise ClientError("the job template %s/%s is missing or not a regular file"
                          % (vgrid, rel)) from None
    if len(data) > MAX_TEMPLATE:
        raise ClientError("the job template %s/%s is larger than %d KB"
                          % (vgrid, rel, MAX_TEMPLATE // 1024))
    return data.decode("utf-8", "replace")


class TriggerRules:
    """Rules and log in the VGrid records of a VGridDB."""

    def __init__(self, vgrids):
        self.vgrids = vgrids

    def rules(self, name):
        return list(self.vgrids.get(name).get("TRIGGERS", []))

    def every_rule(self):
        """{VGrid: its rules} of every VGrid, from one reading of the records."""
        return {name: list(record.get("TRIGGERS", []))
                for name, record in self.vgrids.records().items()}

    def log(self, name):
        return list(self.vgrids.get(name).get("TRIGGER_LOG", []))

    def add(self, name, rule, by_user):
        """Members add their own rules (run as them); owners too.  The template is
        read now and kept with the rule: a file others may write in the shared
        folder never decides what runs as the rule's owner."""
        if not self.vgrids.is_member(by_user, name):
            raise AccessDenied("only the owners and members of %s add triggers" % name)
        template = read_template(self.vgrids.shared_folder(name), rule["arguments"], name)
        rule = dict(rule, owner=by_user, created=time.time(), template=template)

        def change(record):
            rules = record.setdefault("TRIGGERS", [])
            if any(r["rule_id"] == rule["rule_id"] for r in rules):
                raise ConflictError("%s has a trigger %s already" % (name, rule["rule_id"]))
            if len(rules) >= MAX_RULES:
                raise ClientError("%s has %d triggers, the most it may have" % (name, MAX_RULES))
            rules.append(rule)
        self.vgrids._change(name, change)
        return rule

    def remove(self, name, rule_id, by_user):
        """A rule's owner removes it; the VGrid's owners remove any."""
        found = [r for r in self.rules(name) if r["rule_id"] == rule_id]
        if not found:
            raise ClientError("%s has no trigger %s" % (name, rule_id))
        if found[0]["owner"] != by_user:
            self.vgrids._may_manage(name, by_user)
        self.vgrids._change(name, lambda r: r.__setitem__(
            "TRIGGERS", [x for x in r.get("TRIGGERS", []) if x["rule_id"] != rule_id]))

    def record(self, name, entry):
        """Append to the VGrid's trigger log (the newest MAX_LOG kept)."""
        def change(record):
            record["TRIGGER_LOG"] = (record.get("TRIGGER_LOG", []) + [entry])[-MAX_LOG:]
        try:
            self.vgrids._change(name, change)
        except ClientError:
            pass  # the VGrid was removed meanwhile
