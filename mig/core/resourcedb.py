"""Registered resources: their checked configuration, text, owners and the
exe units their owners stopped.

These records are the source of truth.  The CLI (another process) and the
portal only write them; the running grid follows them
(mig/daemon/resourcesync.py).  Who may change a resource is decided in one
place, ``may_manage``: its owners and the grid's admins; ``by_user=None``
is the operator on the appliance host (the CLI), who may do anything.

Names follow MiG: ``<HOSTURL>.<HOSTIDENTIFIER>``, the identifier picked as
the next free number for the host when the configuration says 0 or AUTO.
A name never changes, so an edit may not change HOSTURL, and the pinned
HOSTKEY is never dropped silently (trust on first use only when asked).
"""

import os
import time

from mig.core.resconf import parse_resource, with_host_key
from mig.core.runtimeenvs import RuntimeEnvDB, provided
from mig.errors import AccessDenied, ClientError, ConflictError, MrslError

ALL_UNITS = "*"  # in STOPPED: every exe unit, also ones added later


def may_manage(user, record, is_admin):
    """May user change record?  Owners and admins; None is the host's operator."""
    return user is None or bool(is_admin) or user in record["OWNERS"]


def stopped_units(record):
    """The names of the record's exe units that are stopped."""
    names = {u["name"] for u in record["CONF"]["EXECONFIG"]}
    stopped = record.get("STOPPED", [])
    return names if ALL_UNITS in stopped else names & set(stopped)


class ResourceDB:
    """users: the UserDB (who exists, who is admin); scan_host_key(host, port):
    fetches a host's public key for trust on first use; users_register: may
    users who are not admins register resources."""

    def __init__(self, store, users=None, scan_host_key=None, users_register=False):
        self.store = store
        self.users = users
        self.scan_host_key = scan_host_key
        self.users_register = users_register
        self.runtimeenvs = RuntimeEnvDB(store)  # what a resource may say it provides

    # -- reading ---------------------------------------------------------------------
    def names(self):
        return sorted(name for name, _path in self.store.records("resources"))

    def get(self, name):
        record = self.store.read("resources/%s" % name, None) if "/" not in name else None
        if record is None:
            raise ClientError("no such resource: %s" % name)
        return record

    def get_managed(self, name, by_user):
        """The record, if by_user may manage it; else AccessDenied."""
        record = self.get(name)
        self._check_rights(by_user, record)
        return record

    def managed_by(self, user):
        """The records user may manage (every one for admins)."""
        admin = self.is_admin(user)
        records = []
        for name in self.names():
            try:
                record = self.get(name)
            except ClientError:
                continue  # removed meanwhile
            if may_manage(user, record, admin):
                records.append(record)
        return records

    def signature(self):
        """Changes whenever a record is written or removed: a cheap check for
        the running grid (every write replaces the file, so its inode changes)."""
        entries = []
        for name, path in self.store.records("resources"):
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            entries.append((name, info.st_ino, info.st_mtime_ns, info.st_size))
        return tuple(sorted(entries))

    def is_admin(self, user):
        if user is None:
            return True
        if self.users is None or not self.users.exists(user):
            return False
        return self.users.is_admin(user)

    def may_register(self, user):
        return user is None or self.users_register or self.is_admin(user)

    # -- changes -----------------------------------------------------------------------
    def add(self, text, owner, by_user=None, trust_on_first_use=False):
        """Check and store a configuration; returns the new record."""
        if not self.may_register(by_user):
            raise AccessDenied("only admins register resources on this grid (a resource "
                               "receives other users' jobs and files)")
        if by_user is not None and owner != by_user and not self.is_admin(by_user):
            raise AccessDenied("you may only register resources that you own")
        self._check_user(owner)
        text, conf = self._pinned(text, trust_on_first_use)
        with self.store.lock("resources"):
            taken = [n for n in self.names() if n.rsplit(".", 1)[0] == conf["HOSTURL"]]
            number = conf["HOSTIDENTIFIER"] or 1 + max(
                [int(n.rsplit(".", 1)[1]) for n in taken] or [-1])
            name = "%s.%d" % (conf["HOSTURL"], number)
            if name in taken:
                raise ConflictError("resource %s exists already" % name)
            conf["HOSTIDENTIFIER"] = number
            record = {"NAME": name, "CONF": conf, "TEXT": text, "OWNERS": [owner],
                      "STOPPED": [], "CREATED": time.time()}
            self.store.write("resources/%s" % name, record)
        return record

    def update(self, name, text, by_user=None, trust_on_first_use=False):
        """Replace the configuration; the name, and with it HOSTURL, stays."""
        old = self.get_managed(name, by_user)
        text, conf = self._pinned(text, trust_on_first_use)
        number = int(name.rsplit(".", 1)[1])
        if conf["HOSTURL"] != old["CONF"]["HOSTURL"]:
            raise ClientError("HOSTURL cannot change from %s to %s: it is part of the name %s. "
                              "Register the new host as a new resource instead"
                              % (old["CONF"]["HOSTURL"], conf["HOSTURL"], name))
        if conf["HOSTIDENTIFIER"] not in (0, number):
            raise ClientError("HOSTIDENTIFIER cannot change from %d: it is part of the name %s"
                              % (number, name))
        if old["CONF"]["HOSTKEY"] and not conf["HOSTKEY"]:
            raise ClientError("the edit removes HOSTKEY, the pinned host key of %s: keep it, "
                              "or choose trust on first use to pin the key the host shows now"
                              % name)
        conf["HOSTIDENTIFIER"] = number
        units = {u["name"] for u in conf["EXECONFIG"]}

        def change(record):
            stopped = [u for u in record.get("STOPPED", []) if u == ALL_UNITS or u in units]
            return dict(record, CONF=conf, TEXT=text, STOPPED=stopped, MODIFIED=time.time(),
                        MODIFIED_BY=by_user or "(command line)")
        return self._change(name, by_user, change)

    def add_owner(self, name, owner, by_user=None):
        self._check_user(owner)

        def change(record):
            if owner in record["OWNERS"]:
                return record
            return dict(record, OWNERS=record["OWNERS"] + [owner])
        return self._change(name, by_user, change)

    def remove_owner(self, name, owner, by_user=None):
        def change(record):
            if owner not in record["OWNERS"]:
                raise ClientError("%s is not an owner of %s (owners: %s)"
                                  % (owner, name, ", ".join(record["OWNERS"])))
            if record["OWNERS"] == [owner]:
                raise ClientError("%s is the last owner of %s: add another owner first"
                                  % (owner, name))
            return dict(record, OWNERS=[o for o in record["OWNERS"] if o != owner])
        return self._change(name, by_user, change)

    def set_stopped(self, name, exe, stopped, by_user=None):
        """Stop or start one exe unit (exe) or all of them (exe None or empty)."""
        def change(record):
            units = [u["name"] for u in record["CONF"]["EXECONFIG"]]
            if exe and exe not in units:
                raise ClientError("no exe unit %s on %s (its units: %s)"
                                  % (exe, name, ", ".join(units)))
            now = stopped_units(record)
            if not exe:
                wanted = [ALL_UNITS] if stopped else []
            elif stopped:
                wanted = [ALL_UNITS] if now | {exe} == set(units) else sorted(now | {exe})
            else:
                wanted = sorted(now - {exe})
            return dict(record, STOPPED=wanted)
        return self._change(name, by_user, change)

    def remove(self, name, by_user=None):
        self.get_managed(name, by_user)
        with self.store.lock("resources"):
            self.store.delete("resources/%s" % name)

    # -- helpers -----------------------------------------------------------------------
    def _check_rights(self, user, record):
        if not may_manage(user, record, self.is_admin(user)):
            raise AccessDenied("only the owners of %s (%s) and admins may change it"
                               % (record["NAME"], ", ".join(record["OWNERS"])))

    def _check_user(self, user):
        if self.users is not None and not self.users.exists(user):
            raise ClientError("no such user: %s" % user)

    def _change(self, name, by_user, change):
        """Locked read-modify-write of one record, rights checked on what is read."""
        with self.store.lock("resources"):
            record = self.get(name)
            self._check_rights(by_user, record)
            new = change(record)
            if new is not record:
                self.store.write("resources/%s" % name, new)
        return new

    def _pinned(self, text, trust_on_first_use):
        """(text, conf), with the host's key fetched and pinned when there is no
        HOSTKEY and the owner chose trust on first use."""
        conf = parse_resource(text)
        problems = self.runtimeenvs.check_provided(provided(conf["RUNTIMEENVIRONMENT"]))
        if problems:
            raise MrslError("; ".join(problems), keyword="RUNTIMEENVIRONMENT")
        if conf["HOSTKEY"] or not trust_on_first_use:
            return text, conf
        if self.scan_host_key is None:
            raise ClientError("trust on first use is not available here")
        text = with_host_key(text, self.scan_host_key(conf["HOSTURL"], conf["SSHPORT"]))
        return text, parse_resource(text)
