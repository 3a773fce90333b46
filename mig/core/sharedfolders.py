"""What appears in a user's home besides their own files: the shared folders
of their VGrids (``Lab/``, ``Lab/Sub/``) and the folders other users opened
to them, read-only, under ``shared_with_me/OWNER/PATH``.

A home folder is opened with the ``folder`` visibility (core/visibility.py):
its object id is ``OWNER/PATH``.  The folder is looked up in its owner's own
home (never through a shared folder of theirs, so nobody passes on what was
only shown to them), and only while it is a folder there: one that is
removed or renamed is no longer shown.
"""

import os

from mig.core.home import Home
from mig.errors import MigError

WITH_ME = "shared_with_me"


def vgrid_folders(user, vgrids):
    """{VGrid name: (its shared folder, whether user may write there)}."""
    found, records = {}, vgrids.records()  # one snapshot for the whole answer
    for name in sorted(records):
        if not vgrids.is_member(user, name, records):
            continue
        folder = vgrids.shared_folder(name)
        if not os.path.isdir(folder):
            continue
        setting = vgrids.settings(name, records)["write_shared_files"]
        found[name] = (folder, setting == "MEMBERS" or (
            setting == "OWNERS" and vgrids.is_owner(user, name, records)))
    return found


def split_folder_id(obj):
    """(owner, path in their home) of a folder's object id OWNER/PATH."""
    owner, _sep, path = obj.partition("/")
    return owner, path


def own_folder(home_root, path):
    """The real path of a folder in a home (its own files only), or MigError."""
    real = Home(home_root).resolve(path, must_exist=True)
    if not os.path.isdir(real) or real == os.path.realpath(home_root):
        raise MigError("%s: not a folder of the home" % path)
    return real


def opened_folders(user, visibility, home_of):
    """{shared_with_me/OWNER/PATH: (real folder, False)} for the folders other
    users opened to user; home_of(owner) is the owner's home folder."""
    found = {}
    levels = visibility.levels("folder")
    for obj in sorted(levels):
        owner, path = split_folder_id(obj)
        if owner == user or not visibility.may_see(user, "folder", obj, [owner], levels):
            continue
        try:
            found["%s/%s/%s" % (WITH_ME, owner, path)] = (own_folder(home_of(owner), path),
                                                          False)
        except (MigError, OSError):
            continue  # gone or renamed: no longer shown
    return found


def shared_folders(user, vgrids, visibility, home_of):
    """Every folder that appears in user's home; the parents of nested names
    (``Lab`` of ``Lab/Sub``, ``shared_with_me/alice``) are made in the home."""
    found = vgrid_folders(user, vgrids)
    found.update(opened_folders(user, visibility, home_of))
    for name in found:
        parent = name.rpartition("/")[0]
        if parent and parent not in found:
            os.makedirs(os.path.join(home_of(user), *parent.split("/")), exist_ok=True)
    return found
