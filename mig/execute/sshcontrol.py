"""Owner operations on a remote resource over ssh, outside of jobs: can the
grid log in (status, and the keep-alive's probe), remove job folders left
there (clean), and fetch a host key for trust on first use.

The CLI and the running grid both use these, so both say the same thing.
They go through the resource's ``Remote`` (mig/execute/sshremote.py): the same
pinned host key, BatchMode and ControlMaster connection as the jobs.
"""

import shutil
import subprocess

from mig.errors import ClientError, MigError

TIMEOUT = 60
KEY_PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                  "ecdsa-sha2-nistp521", "rsa-sha2-512", "ssh-rsa")


class ResourceUnreachable(MigError):
    """The grid cannot log in to the resource (the message says why)."""


def failure_reason(result):
    """The last line ssh wrote, explained when it is the pinned host key."""
    lines = (result.stderr or "").strip().splitlines()
    detail = lines[-1] if lines else "ssh exit code %d" % result.returncode
    text = " ".join(lines)
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION" in text:
        detail = "the host key does not match the pinned HOSTKEY: refused (%s)" % detail
    return detail


def run(remote, command, timeout=TIMEOUT, fresh=False):
    """Run command on the resource; ResourceUnreachable with the reason if it fails.

    fresh: on a connection of its own, not through the ControlMaster (ssh takes
    the first value given for an option, so these come first)."""
    argv = remote.ssh(command)
    if fresh:
        argv = argv[:1] + ["-o", "ControlMaster=no", "-o", "ControlPath=none"] + argv[1:]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ResourceUnreachable("%s: no answer within %d s" % (remote.name, timeout)) from None
    if result.returncode != 0:
        raise ResourceUnreachable("%s: %s" % (remote.name, failure_reason(result)))
    return result.stdout


def check(remote, timeout=TIMEOUT):
    """Can the grid log in?  Returns quietly, or raises ResourceUnreachable.

    A failure through the ControlMaster is tried once more on a connection of
    its own: the master may refuse one more session while jobs use them all
    (sshd's MaxSessions), or not know yet that its connection is dead; the
    second answer is the one that counts."""
    try:
        run(remote, "true", timeout)
    except ResourceUnreachable:
        run(remote, "true", timeout, fresh=True)


def clean(remote, keep=(), timeout=TIMEOUT):
    """Stop what runs in the job folders under RESOURCEHOME and remove them,
    except those of the jobs in keep (the ones running there now): the same
    sweep as after a crash of the appliance."""
    run(remote, remote.sweep_command(keep), timeout)


def retire_master(remote):
    """The resource's ControlMaster takes no new sessions (its address or key
    changed); the sessions of running jobs go on, and it ends after them."""
    subprocess.run(["ssh", "-o", "ControlPath=%s" % remote.control, "-O", "stop",
                    "%s@%s" % (remote.user, remote.host)], capture_output=True, timeout=10)


def scan_host_key(host, port, timeout=10):
    """The host's public key as 'TYPE BASE64', asked of that host and port only
    (trust on first use: whoever answers now is pinned)."""
    if shutil.which("ssh-keyscan") is None:
        raise ClientError("trust on first use needs ssh-keyscan, which is not installed on "
                          "the appliance host (apt-get install openssh-client)")
    result = subprocess.run(["ssh-keyscan", "-T", str(timeout), "-p", str(int(port)),
                             "-t", "ed25519,ecdsa,rsa", "--", host],
                            capture_output=True, text=True, timeout=timeout + 20)
    keys = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#"):
            keys[parts[1]] = "%s %s" % (parts[1], parts[2])
    for kind in KEY_PREFERENCE:
        if kind in keys:
            return keys[kind]
    raise ClientError("could not fetch the host key of %s port %d: %s"
                      % (host, port, (result.stderr.strip().splitlines() or
                                      ["no answer"])[-1]))
