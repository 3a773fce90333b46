"""Who may see what people share: one setting per object, decided here.

An object's visibility is ``private`` (its owners and the grid's admins),
``vgrid:NAME`` (also the owners and members of that VGrid, also inherited
ones) or ``public`` (every user of the grid).  The kinds, and what their
setting opens to others:

* ``job`` (private by default): its status and description (jobstatus by
  its id);
* ``runtimeenv`` (public by default): seeing it in the lists and on its
  page, and submitting jobs that ask for it;
* ``resource`` (public by default): seeing it on the Resources page, the
  Dashboard and the monitor;
* ``folder`` (private by default; its id is ``OWNER/PATH``): reading it, in
  one's own home under ``shared_with_me/OWNER/PATH`` (core/sharedfolders.py).

Only non-default settings are stored, one record per kind.  The owners of an
object change its setting; they may open it to a VGrid only if they are in it.
"""

from mig.errors import AccessDenied, InvalidArgument

DEFAULTS = {"job": "private", "runtimeenv": "public", "resource": "public",
            "folder": "private"}


def describe(level):
    if level.startswith("vgrid:"):
        return "the VGrid %s" % level[6:]
    return {"private": "only its owners", "public": "every user"}[level]


class Visibility:
    """vgrids: the VGridDB; is_admin(user) -> bool."""

    def __init__(self, store, vgrids, is_admin):
        self.store, self.vgrids, self.is_admin = store, vgrids, is_admin

    def _record(self, kind):
        if kind not in DEFAULTS:
            raise InvalidArgument("kind: one of %s" % ", ".join(sorted(DEFAULTS)))
        return "visibility/%s" % kind

    def level(self, kind, obj):
        return self.store.read(self._record(kind), {}).get(obj, DEFAULTS[kind])

    def levels(self, kind):
        """{object: level} of the objects of kind with a setting of their own."""
        return dict(self.store.read(self._record(kind), {}))

    def may_see(self, user, kind, obj, owners, levels=None):
        """Whether user may see the object (owners: who own it)."""
        if user in owners or self.is_admin(user):
            return True
        level = (levels if levels is not None else self.levels(kind)).get(obj, DEFAULTS[kind])
        if level == "public":
            return True
        return level.startswith("vgrid:") and self.vgrids.is_member(user, level[6:])

    def set(self, kind, obj, level, by_user, owners):
        """Change an object's setting (its owners, or an admin)."""
        record = self._record(kind)
        if by_user not in owners and not self.is_admin(by_user):
            raise AccessDenied("only the owners of %s change who sees it" % obj)
        if level.startswith("vgrid:"):
            name = level[6:]
            if not self.vgrids.exists(name) or not self.vgrids.is_member(by_user, name):
                raise AccessDenied("you can share with a VGrid you are in; %s is not one"
                                   % name)
        elif level not in ("private", "public"):
            raise InvalidArgument("visibility: private, public or vgrid:NAME")

        def change(levels):
            levels = dict(levels or {})
            if level == DEFAULTS[kind]:
                levels.pop(obj, None)
            else:
                levels[obj] = level
            return levels
        self.store.update(record, change, {})
