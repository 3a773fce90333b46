"""Stopping what the runners of an earlier appliance run left behind.

Every runner is a session leader (it starts with its own session), and the
jobs it starts stay in that session.  Each runner's pid and start time are
written to a small file when it starts and removed when it stops; after a
crash, the files that remain name the sessions to stop.  This costs nothing
per job (no process-group file to write for every run).

Linux does not hand out a pid again while any process still uses it as its
session id, so processes found in such a session either belong to the old
runner or, if a new process with that pid and another start time leads the
session, to someone else: those are left alone.
"""

import contextlib
import os
import signal


def _stat(pid):
    """(uid, session id, start time) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            text = handle.read().decode("ascii", "replace")
        uid = os.stat("/proc/%d" % pid).st_uid
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return uid, int(fields[3]), int(fields[19])


def record_runner(folder, pid):
    """Note a runner that has just started (call once per runner)."""
    info = _stat(pid)
    with contextlib.suppress(OSError):
        with open(os.path.join(folder, str(pid)), "w", encoding="ascii") as handle:
            handle.write("%d\n" % (info[2] if info else 0))


def forget_runner(folder, pid):
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(folder, str(pid)))


def kill_leftovers(folder, uid=None, keep=()):
    """SIGKILL every process left in a recorded runner's session (only those of
    ``uid`` when given); remove the records, except those of the runners in
    ``keep`` (our own).  Returns the pids signalled."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    sessions = {}
    for name in names:
        if not name.isdigit() or int(name) in keep:
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="ascii") as handle:
                started = int(handle.read().strip() or 0)
            sessions[int(name)] = started
        except (OSError, ValueError):
            pass
        with contextlib.suppress(OSError):
            os.unlink(path)
    old = set()
    for sid, started in sessions.items():
        leader = _stat(sid)
        if leader is None or leader[2] == started:
            old.add(sid)  # the runner itself, or the session it left behind
    killed = []
    if not old:
        return killed
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        info = _stat(int(entry))
        if info is None or info[1] not in old or (uid is not None and info[0] != uid):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(entry), signal.SIGKILL)
            killed.append(int(entry))
    return killed
