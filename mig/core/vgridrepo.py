"""The git repository of each VGrid: where it lives, who may read and push,
and making it on first use.  The web layer (web/gitrepo.py) passes the
smart HTTP requests to git's own http-backend once this has said yes."""

import os
import subprocess
import urllib.parse

from mig.core.vgrids import check_name
from mig.errors import AccessDenied


def git_env(root):
    """A plain environment for git: no system or user configuration."""
    return {"PATH": "/usr/bin:/bin", "HOME": root, "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C"}


def repo_name(name):
    """The repository's folder name below the root (a sub-VGrid's '/' quoted)."""
    return urllib.parse.quote(name, safe="") + ".git"


def may_use(vgrids, user, name, write):
    """Owners and members read; they push too unless write_shared_files says
    OWNERS (owners only) or NONE.  The same answer whether or not the VGrid
    exists, so outsiders learn nothing."""
    if not vgrids.exists(name) or not vgrids.is_member(user, name):
        return False
    if not write:
        return True
    setting = vgrids.settings(name)["write_shared_files"]
    return setting == "MEMBERS" or (setting == "OWNERS" and vgrids.is_owner(user, name))


def open_repository(root, vgrids, user, name, write):
    """The repository's folder name below root, made on first use, if user may
    read it (or push, with write); else AccessDenied."""
    check_name(name)
    if not may_use(vgrids, user, name, write):
        raise AccessDenied("%s may not %s the repository of %s"
                           % (user, "push to" if write else "read", name))
    folder = os.path.join(root, repo_name(name))
    if not os.path.isdir(folder):
        os.makedirs(root, mode=0o700, exist_ok=True)
        for command in (["git", "init", "--bare", "--quiet", folder],
                        ["git", "--git-dir", folder, "config", "http.receivepack", "true"]):
            subprocess.run(command, check=True, capture_output=True, timeout=60,
                           env=git_env(root))
    return repo_name(name)
