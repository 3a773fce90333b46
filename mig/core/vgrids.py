"""VGrids: virtual organisations that users create and run themselves.

A VGrid has owners, members and resources; a name with ``/`` is a
sub-VGrid, and the owners, members and resources of every VGrid above it
count for it too (``A`` and ``A/B`` for ``A/B/C``, root first).  Entries
are fnmatch patterns as in MiG, so ``*`` admits every user.  ``Generic``
holds everyone and every resource and is never stored.

Who may change what is decided here, in ``_may_manage``: the owners of a
VGrid (also inherited ones) and the grid's admins; a member may only take
itself out.  Requests to join (a user as member or owner, a resource owner
for a resource) wait in the VGrid's record until an owner accepts them (the
add backends with ``request_name``) or rejects them.
"""

import fnmatch
import os
import re
import secrets
import threading
import time
from urllib.parse import quote

from mig.core.keywords import DEFAULT_VGRID
from mig.errors import AccessDenied, ClientError, ConflictError, InvalidArgument

RESERVED = {"generic", "any", "all"}
_PART = r"[A-Za-z0-9][A-Za-z0-9._ -]{0,63}"
NAME_PATTERN = re.compile(r"^%s(/%s){0,7}$" % (_PART, _PART))
ROLES = ("OWNERS", "MEMBERS", "RESOURCES")
INVITE = "vgridinvite"  # an owner's invitation, answered by the invited user
REQUEST_TYPES = {"vgridmember": "MEMBERS", "vgridowner": "OWNERS", "vgridresource": "RESOURCES"}
MAX_REQUESTS = 200  # waiting requests per VGrid; more are refused until owners answer
SETTINGS = {"description": "", "write_shared_files": "MEMBERS", "hidden": False,
            "visible_owners": "MEMBERS", "visible_members": "MEMBERS",
            "visible_resources": "MEMBERS", "public_page": "EVERYONE"}
# Who sees a list (MiG stored these and did not enforce them); every user, or
# anyone without logging in for the public page.
CHOICES = {"write_shared_files": ("MEMBERS", "OWNERS", "NONE"),
           "visible_owners": ("OWNERS", "MEMBERS", "EVERYONE"),
           "visible_members": ("OWNERS", "MEMBERS", "EVERYONE"),
           "visible_resources": ("OWNERS", "MEMBERS", "EVERYONE"),
           "public_page": ("MEMBERS", "EVERYONE")}


def check_name(name):
    """A VGrid name as MiG allows it, or InvalidArgument saying what is wrong."""
    if not NAME_PATTERN.match(name or "") or name.endswith(" ") or "  " in name:
        raise InvalidArgument(
            "invalid VGrid name %r: use letters, digits, '.', '_', '-' and single spaces, "
            "starting with a letter or digit; '/' separates a sub-VGrid from its parent" % name)
    if name.split("/")[0].lower() in RESERVED:
        raise InvalidArgument("%s is a reserved name: Generic, ANY and ALL cannot be created"
                              % name.split("/")[0])
    return name


def parents(name):
    """['A', 'A/B', 'A/B/C'] for 'A/B/C': the VGrid and those above it, root first."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _listed(who, entries):
    return any(fnmatch.fnmatchcase(who, entry) for entry in entries)


class VGridDB:
    """The VGrid records in the store (``vgrids/<quoted name>``).  users: the
    UserDB (who exists, who is admin)."""

    def __init__(self, store, users, files_root=None):
        self.store = store
        self.users = users
        self.files_root = files_root  # the VGrids' shared folders (A/B below A)
        self._lock = threading.Lock()
        self._cache = {}  # record file name -> ((inode, size, mtime), record)

    def shared_folder(self, name):
        """The real folder the members of name share (a sub-VGrid's lies in its parent's)."""
        return os.path.join(self.files_root, *name.split("/"))

    # -- reading ---------------------------------------------------------------------
    @staticmethod
    def _path(name):
        return "vgrids/%s" % quote(name, safe="")

    def records(self):
        """{name: record} of every VGrid (not to be changed).  A record file is
        read again only when it changed: every write replaces it, so its
        (inode, size, modification time) differ; unchanged ones come from memory."""
        seen = {}
        try:
            with os.scandir(os.path.join(self.store.root, "vgrids")) as listing:
                for entry in listing:
                    if entry.name.endswith(".pickle") and not entry.name.startswith("."):
                        info = entry.stat(follow_symlinks=False)
                        seen[entry.name] = ((info.st_ino, info.st_size, info.st_mtime_ns),
                                            entry.path)
        except FileNotFoundError:
            pass
        with self._lock:
            fresh = {}
            for file_name, (key, path) in seen.items():
                known = self._cache.get(file_name)
                if known is not None and known[0] == key:
                    fresh[file_name] = known
                    continue
                try:
                    fresh[file_name] = (key, self.store.read_file(path))
                except (OSError, ValueError):
                    continue  # removed meanwhile, or damaged: never shown as a VGrid
            self._cache = fresh
        return {record["NAME"]: record for _key, record in fresh.values() if "NAME" in record}

    def names(self):
        return sorted(self.records())

    def exists(self, name):
        return name == DEFAULT_VGRID or self.store.exists(self._path(name))

    def get(self, name, records=None):
        record = (records or self.records()).get(name) if name != DEFAULT_VGRID else None
        if record is None:
            raise ClientError("no such VGrid: %s" % name)
        return record

    def chain(self, name, records=None):
        """The records of the VGrid and of those above it, root first."""
        records = records if records is not None else self.records()
        return [records[n] for n in parents(name) if n in records]

    def entries(self, name, role, records=None):
        """Everyone in role (OWNERS, MEMBERS, RESOURCES), inherited ones first."""
        found = []
        for record in self.chain(name, records):
            found += [e for e in record[role] if e not in found]
        return found

    def is_owner(self, user, name, records=None):
        if name == DEFAULT_VGRID:
            return False
        return _listed(user, self.entries(name, "OWNERS", records))

    def is_member(self, user, name, records=None):
        """Owners and members (also inherited ones); everyone is in Generic."""
        if name == DEFAULT_VGRID:
            return True
        records = records if records is not None else self.records()
        return self.is_owner(user, name, records) or \
            _listed(user, self.entries(name, "MEMBERS", records))

    def role(self, user, name):
        if self.is_owner(user, name):
            return "owner"
        return "member" if self.is_member(user, name) else ""

    def has_resource(self, name, resource):
        """Whether the VGrid (or one above it) accepted the resource; Generic takes all."""
        if name == DEFAULT_VGRID:
            return True
        try:
            return _listed(resource, self.entries(name, "RESOURCES"))
        except ClientError:
            return False  # the VGrid was removed

    def user_vgrids(self, user):
        """Generic, then every VGrid the user owns or is a member of (what ANY means)."""
        records = self.records()
        return [DEFAULT_VGRID] + [n for n in sorted(records) if self.is_member(user, n, records)]

    def settings(self, name, records=None):
        """The VGrid's settings, those of the VGrids above it filling what it leaves unset."""
        merged = dict(SETTINGS)
        for record in self.chain(name, records):
            merged.update(record.get("SETTINGS", {}))
        return merged

    # -- rights ----------------------------------------------------------------------
    def _may_manage(self, name, by_user):
        """Owners (also inherited ones) and admins; None is the host's operator."""
        if by_user is None or self.users.is_admin(by_user):
            return
        if not self.is_owner(by_user, name):
            raise AccessDenied("only the owners of %s may do that" % name)

    def check_visible(self, name, user):
        """Members see a VGrid's lists; others are told it is not theirs."""
        self.get(name)
        if not (self.is_member(user, name) or self.users.is_admin(user)):
            raise AccessDenied("you are not a member of the VGrid %s" % name)

    def may_list(self, user, name, role):
        """Whether user sees the VGrid's list of OWNERS, MEMBERS or RESOURCES, by its
        visible_* setting (owners and admins always do)."""
        records = self.records()
        if self.is_owner(user, name, records) or self.users.is_admin(user):
            return True
        setting = self.settings(name, records)["visible_" + role.lower()]
        return setting == "EVERYONE" or (setting == "MEMBERS" and
                                         self.is_member(user, name, records))

    def check_list(self, name, user, role):
        self.get(name)
        if not self.may_list(user, name, role):
            raise AccessDenied("the %s of %s are shown to %s only" % (
                role.lower(), name, "its owners" if self.settings(name)[
                    "visible_" + role.lower()] == "OWNERS" else "its owners and members"))

    # -- changes ---------------------------------------------------------------------
    def _change(self, name, change):
        def apply(record):
            if record is None:
                raise ClientError("no such VGrid: %s" % name)
            change(record)
            return record
        return self.store.update(self._path(name), apply)

    def create(self, name, by_user):
        """A new VGrid owned by its creator; a sub-VGrid only by an owner of its parent
        (who is its owner already, through the parent)."""
        check_name(name)
        if "/" in name:
            parent = name.rsplit("/", 1)[0]
            if not self.exists(parent):
                raise ClientError("no such VGrid: %s (create it before %s)" % (parent, name))
            self._may_manage(parent, by_user)
        record = {"NAME": name, "OWNERS": [] if "/" in name or not by_user else [by_user],
                  "MEMBERS": [],
                  "RESOURCES": [], "SETTINGS": {}, "REQUESTS": [], "CREATOR": by_user,
                  "CREATED": time.time()}
        with self.store.lock("vgrids-create"):
            if any(n.lower() == name.lower() for n in self.names()):
                raise ConflictError("a VGrid named %s exists already" % name)
            if self.files_root:
                folder = self.shared_folder(name)
                if os.path.lexists(folder) and not os.path.isdir(folder):
                    raise ConflictError("a file is in the way of %s's shared folder" % name)
                os.makedirs(folder, mode=0o755, exist_ok=True)
            self.store.write(self._path(name), record)
        return record

    def add(self, name, role, entry, by_user, request_name=""):
        """Add an owner, member or resource (the caller checked that it exists);
        an accepted request leaves the list of waiting ones."""
        self._may_manage(name, by_user)
        if role != "RESOURCES" and self.role(entry, name):
            raise ConflictError("%s is already %s of %s" % (entry, "an " + self.role(entry, name)
                                                            if self.role(entry, name) == "owner"
                                                            else "a member", name))
        if role == "RESOURCES" and self.has_resource(name, entry):
            raise ConflictError("%s is already a resource of %s" % (entry, name))

        def change(record):
            record[role].append(entry)
            if role == "OWNERS" and entry in record["MEMBERS"]:
                record["MEMBERS"].remove(entry)  # promoted
            record["REQUESTS"] = [r for r in record["REQUESTS"]
                                  if r["id"] != request_name
                                  and not (r["who"] == entry and REQUEST_TYPES[r["type"]] == role)]
        return self._change(name, change)

    def remove(self, name, role, entry, by_user, may_remove_resource=False):
        """Take an owner, member or resource out.  Owners may; a user may take
        itself out; may_remove_resource: the caller owns the resource."""
        record = self.get(name)
        itself = (role != "RESOURCES" and entry == by_user) or may_remove_resource
        if not itself:
            self._may_manage(name, by_user)
        if entry not in record[role]:
            inherited = [r["NAME"] for r in self.chain(name)[:-1] if entry in r[role]]
            if inherited:
                raise ClientError("%s is in %s through %s: remove it there" % (
                    entry, name, inherited[-1]))
            raise ClientError("%s is not among the %s of %s" % (entry, role.lower(), name))
        if role == "OWNERS" and record["OWNERS"] == [entry] and "/" not in name:
            raise ClientError("%s is the last owner of %s: add another owner first, or "
                              "remove the VGrid" % (entry, name))
        return self._change(name, lambda r: r[role].remove(entry))

    def forget_user(self, user):
        """Take a removed account out of every VGrid: its own roles and trigger
        rules (roles through a pattern stay).  Refused, changing nothing, while
        it is the only owner of a VGrid that has no parent."""
        records = self.records()
        for name, record in sorted(records.items()):
            if record["OWNERS"] == [user] and "/" not in name:
                raise ClientError("%s is the only owner of the VGrid %s: make someone else "
                                  "its owner first" % (user, name))

        def change(record):
            for role in ("OWNERS", "MEMBERS"):
                record[role] = [e for e in record[role] if e != user]
            record["TRIGGERS"] = [r for r in record.get("TRIGGERS", []) if r["owner"] != user]
        for name, record in sorted(records.items()):
            if user in record["OWNERS"] + record["MEMBERS"] or \
                    any(r["owner"] == user for r in record.get("TRIGGERS", [])):
                self._change(name, change)

    def delete(self, name, by_user):
        """Remove a VGrid without sub-VGrids (its owners or an admin)."""
        self.get(name)
        self._may_manage(name, by_user)
        below = [n for n in self.names() if n.startswith(name + "/")]
        if below:
            raise ClientError("%s has sub-VGrids (%s): remove them first" % (name, ", ".join(below)))
        if self.files_root and os.path.isdir(self.shared_folder(name)):
            try:
                os.rmdir(self.shared_folder(name))
            except OSError:
                raise ClientError("the shared folder of %s still holds files: remove them "
                                  "first" % name) from None
        self.store.delete(self._path(name))

    def save_settings(self, name, values, by_user):
        self._may_manage(name, by_user)
        unknown = set(values) - set(SETTINGS)
        if unknown:
            raise InvalidArgument("unknown VGrid setting(s): %s" % ", ".join(sorted(unknown)))
        for key, allowed in CHOICES.items():
            if key in values and values[key] not in allowed:
                raise InvalidArgument("%s is %s" % (key, ", ".join(allowed[:-1]) + " or "
                                                     + allowed[-1]))
        return self._change(name, lambda r: r["SETTINGS"].update(values))

    # -- requests --------------------------------------------------------------------
    def request(self, name, request_type, who, text=""):
        """Ask the owners of a VGrid to take who (a user or a resource) in."""
        if request_type not in REQUEST_TYPES:
            raise InvalidArgument("request_type is one of %s" % ", ".join(sorted(REQUEST_TYPES)))
        if name == DEFAULT_VGRID:
            raise ClientError("everyone is in Generic already")
        role = REQUEST_TYPES[request_type]
        if role != "RESOURCES" and (self.is_owner(who, name) or
                                    (role == "MEMBERS" and self.is_member(who, name))):
            raise ConflictError("%s is already %s of %s" % (who, self.role(who, name), name))
        if role == "RESOURCES" and self.has_resource(name, who):
            raise ConflictError("%s is already a resource of %s" % (who, name))
        entry = {"id": secrets.token_hex(8), "type": request_type, "who": who,
                 "text": (text or "")[:2000], "time": time.time()}

        def change(record):
            if any(r["who"] == who and r["type"] == request_type for r in record["REQUESTS"]):
                raise ConflictError("%s asked to join %s already; its owners have not "
                                    "answered yet" % (who, name))
            if len(record["REQUESTS"]) >= MAX_REQUESTS:
                raise ClientError("%s has too many requests waiting; try again later" % name)
            record["REQUESTS"].append(entry)
        self._change(name, change)
        return entry

    def invite(self, name, who, by_user):
        """An owner invites a user to be a member; the user accepts or declines."""
        self._may_manage(name, by_user)
        if self.role(who, name):
            raise ConflictError("%s is already %s of %s" % (who, self.role(who, name), name))
        entry = {"id": secrets.token_hex(8), "type": INVITE, "who": who, "by": by_user,
                 "text": "", "time": time.time()}

        def change(record):
            if any(r["who"] == who and r["type"] == INVITE for r in record["REQUESTS"]):
                raise ConflictError("%s is invited to %s already" % (who, name))
            if len(record["REQUESTS"]) >= MAX_REQUESTS:
                raise ClientError("%s has too many requests waiting" % name)
            record["REQUESTS"].append(entry)
        self._change(name, change)
        return entry

    def invitations(self, user):
        """[(VGrid, invitation)] waiting for user's answer."""
        return [(name, r) for name in self.names() for r in self.get(name)["REQUESTS"]
                if r["type"] == INVITE and r["who"] == user]

    def answer_invitation(self, name, request_id, user, accept):
        """The invited user takes the invitation (becomes a member) or declines it."""
        found = {}

        def change(record):
            kept = []
            for r in record["REQUESTS"]:
                if r["id"] == request_id and r["type"] == INVITE and r["who"] == user:
                    found["invite"] = r
                else:
                    kept.append(r)
            if not found:
                raise ClientError("no invitation of yours to %s: %s" % (name, request_id))
            record["REQUESTS"] = kept
            if accept and not _listed(user, record["MEMBERS"]):
                record["MEMBERS"].append(user)
        self._change(name, change)
        return found["invite"]

    def requests(self, name, by_user):
        self._may_manage(name, by_user)
        return list(self.get(name)["REQUESTS"])

    def reject(self, name, request_name, by_user):
        self._may_manage(name, by_user)
        found = [r for r in self.get(name)["REQUESTS"] if r["id"] == request_name]
        if not found:
            raise ClientError("no such request in %s: %s" % (name, request_name))
        self._change(name, lambda r: r.__setitem__(
            "REQUESTS", [q for q in r["REQUESTS"] if q["id"] != request_name]))
        return found[0]
