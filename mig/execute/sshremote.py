"""One ssh resource as the grid reaches it: the ssh command line (pinned
host key, one ControlMaster per resource, BatchMode, timeouts) and the
shell code that runs on the resource for a job, a cancel and a sweep.

The remote side of a job is one connection: a fresh private folder under
RESOURCEHOME (RESOURCEHOME must belong to MIGUSER and be closed to others),
the inputs as a tar stream on stdin, the job in its own session (or as a
Slurm batch job) with MIGJOB=<its folder> in the environment of every
process, a word on stderr when it really starts, a check that the disk
still has room, every process of the job killed, and the folder back as a
tar stream on stdout.  mig/execute/ssh.py drives it.
"""

import hashlib
import os
import shlex
import stat
import subprocess
import tempfile

from mig.store.atomic import write_atomic

CONNECT_TIMEOUT = 10
# A silent connection (a host or network that vanished without a word) is
# given up after ALIVE_INTERVAL * ALIVE_COUNT seconds.
ALIVE_INTERVAL, ALIVE_COUNT = 10, 3
# Free space a finished job must leave in its folder, else the disk is full.
SPACE_PROBE = 65536
DISK_FULL = ("No space left on device", "Disk quota exceeded")
STARTED = b"mig-job-started"  # the remote side's word, on stderr, that the job runs now
# ssh binds a ControlPath plus ".<16 random characters>" as a unix socket
# first (at most 107 bytes on Linux): longer paths go to a short folder.
CONTROL_PATH_MAX = 90
# Rounds of the kill sweep: a job that forks while it is swept is found again.
ZAP_ROUNDS = 30


def key_paths(ssh_dir):
    return os.path.join(ssh_dir, "id_ed25519"), os.path.join(ssh_dir, "id_ed25519.pub")


def ensure_grid_key(ssh_dir):
    """The grid's own ssh key pair, made once (resource owners authorize its .pub)."""
    private, public = key_paths(ssh_dir)
    if not os.path.exists(private):
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mig-appliance",
                        "-f", private], check=True, capture_output=True)
    return public


class Remote:
    """How to reach one resource."""

    def __init__(self, name, conf, ssh_dir):
        self.name = name
        self.lrms = conf["LRMSTYPE"]
        self.partitions = {u["name"]: u["partition"] for u in conf["EXECONFIG"]}
        self.host, self.port, self.user = conf["HOSTURL"], conf["SSHPORT"], conf["MIGUSER"]
        self.home = conf["RESOURCEHOME"].rstrip("/") or "."
        if self.home.startswith("-"):  # a record older than the check: never an option
            self.home = "./" + self.home
        self.known_hosts = os.path.join(ssh_dir, "known_hosts-%s" % name)
        host = self.host if self.port == 22 else "[%s]:%d" % (self.host, self.port)
        # Replaced whole (a job's ssh may be reading it while the owner edits the key).
        write_atomic(self.known_hosts, ("%s %s\n" % (host, conf["HOSTKEY"])
                                        if conf["HOSTKEY"] else "").encode(), durable=False)
        self.control = control_path(ssh_dir, name, self.host, self.port, self.user)
        self.key = key_paths(ssh_dir)[0]

    def ssh(self, command):
        return ["ssh", "-p", str(self.port), "-i", self.key, "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=%d" % CONNECT_TIMEOUT, "-o", "StrictHostKeyChecking=yes",
                "-o", "UserKnownHostsFile=%s" % self.known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "ControlMaster=auto", "-o", "ControlPath=%s" % self.control,
                "-o", "ControlPersist=60", "-o", "KexAlgorithms=curve25519-sha256",
                "-o", "ServerAliveInterval=%d" % ALIVE_INTERVAL,
                "-o", "ServerAliveCountMax=%d" % ALIVE_COUNT,
                "%s@%s" % (self.user, self.host), command]

    def folder(self, job_id, token):
        """One run's folder, relative to the resolved RESOURCEHOME ($h there)."""
        return "job-%s.%s" % (job_id, token)

    def run_command(self, job_id, exe, spec):
        """The remote command that runs the job in its folder ($f, the current
        directory) and waits for it to end; a job stopped at its CPUTIME leaves
        a .timeout file there.  Every process of the job inherits MIGJOB=$f."""
        if self.lrms == "slurm":
            minutes = max(1, (int(spec["CPUTIME"]) + 59) // 60)
            # sbatch --wait returns when the batch job ends; the batch job is named
            # after the grid job, so a cancel finds it by name.  Slurm ends it at
            # --time, and then its state says TIMEOUT.  sbatch hands its
            # environment (MIGJOB too) to the batch job.
            # The batch job marks its start with a .started file; a watcher
            # says so on stderr (STARTED), so the grid knows a job that waits
            # in the batch queue from one that runs.
            return ("(while [ ! -e .started ] && kill -0 $$ 2>/dev/null; do sleep 1; done; "
                    "[ -e .started ] && echo %s >&2) &\n"
                    "id=$(MIGJOB=\"$f\" sbatch --parsable --wait --job-name=%s --partition=%s "
                    "--time=%d --nodes=%d --output=/dev/null --error=/dev/null --chdir=. "
                    "--wrap=': > .started; exec bash ./%s.job')\n"
                    "if [ -n \"$id\" ]; then case $(scontrol -o show job \"${id%%%%;*}\" "
                    "2>/dev/null) in *JobState=TIMEOUT*) : > .timeout;; esac; fi"
                    % (STARTED.decode(), shlex.quote(job_id), shlex.quote(self.partitions[exe]),
                       minutes, int(spec["NODECOUNT"]), job_id))
        # Its own session, so that one kill takes the whole group.  The watchdog
        # is in the group: it ends the job when CPUTIME is spent, and it goes,
        # with whatever the job left running, when the job ends (shell
        # builtins only after the job: no process per job for that).
        return ("echo %s >&2\n{ MIGJOB=\"$f\" setsid -w bash -c 'echo $$ > .pgid; "
                "(sleep %d; : > .timeout; kill -KILL 0) & exec bash ./%s.job'; } 2>/dev/null\n"
                "read g < .pgid && [ \"$g\" -gt 1 ] && kill -KILL -- \"-$g\" 2>/dev/null"
                % (STARTED.decode(), int(spec["CPUTIME"]), job_id))

    def _home_code(self, missing):
        """Shell code that sets $h to RESOURCEHOME resolved, or runs missing."""
        return "h=$(cd %s 2>/dev/null && pwd -P) || %s" % (shlex.quote(self.home), missing)

    def job_command(self, job_id, exe, spec, token):
        """The whole remote side of one job, on one connection: RESOURCEHOME
        must be MIGUSER's and closed to others, the run's folder is made fresh
        (0700, refused if it exists), the inputs arrive as a tar stream on
        stdin, the job runs, the disk must still have room, every process of
        the job is killed, and the folder goes back as a tar stream on stdout
        and is removed.  The shell notes its PID in .shell, so that a cancel
        or sweep stops it too."""
        home = shlex.quote(self.home)
        return "\n".join([
            # tar says only "Wrote only N of M bytes" when a file fills the disk
            "space() { { printf '%%%ds' '' > .space; } 2>/dev/null && : > .space || echo "
            "\"could not write %d bytes in $PWD $1: %s\" >&2; }"
            % (SPACE_PROBE, SPACE_PROBE, DISK_FULL[0]),
            "(umask 077 && mkdir -p %s) && %s" % (home, self._home_code("exit 1")),
            # a folder others may write to lets them swap a job's folder
            "case $(ls -ld \"$h\") in d????w*|d???????w*) false;; d*) [ -O \"$h\" ];; *) false;; "
            "esac || { echo \"RESOURCEHOME $h must be a folder of $(id -un) that no one else "
            "may write to: refused\" >&2; exit 1; }",
            "f=\"$h\"/%s" % shlex.quote(self.folder(job_id, token)),
            "mkdir -m 0700 \"$f\" && cd \"$f\" || exit 1",
            "echo $$ > .shell",
            "tar -xf - || { s=$?; space 'for the inputs'; cd / && rm -rf \"$f\"; exit $s; }",
            "{ %s\n} </dev/null >/dev/null" % self.run_command(job_id, exe, spec),
            "space 'after the job ran'",
            "cd /; " + _zap_code('"$f"|"$f"/*'),
            "tar -C \"$f\" -cf - .; s=$?; rm -rf \"$f\"; exit $s"])

    def _stop_folder(self):
        """Shell code that stops the job in folder $d: first the connection's
        shell (so that it removes nothing later), then the job's process group
        or batch job.  Only real process groups are signalled (a job could
        write 1 or 0 into its .pgid); the kill runs as MIGUSER, so a job that
        lies in these files reaches nothing it could not kill itself."""
        code = ('for q in .shell .pgid; do g=$(cat "$d/$q" 2>/dev/null) && '
                '[ "$g" -gt 1 ] 2>/dev/null && kill -KILL -- "-$g" 2>/dev/null; done; ')
        if self.lrms == "slurm":
            code += 'n=${d##*/job-}; scancel --name="${n%.*}" 2>/dev/null; '
        return code

    def _stop_all(self, folders, match, keep=""):
        """Shell code that stops the jobs in folders (a glob under $h), then
        every process marked for or working in a folder that the case
        patterns match names and keep does not, and removes the folders."""
        each = "for d in %s; do case \"$d\" in %s) continue;; esac; [ -d \"$d\" ] && " % (
            folders, keep or "''")
        return ("%s{ %s}; done; %s; %srm -rf \"$d\"; done; exit 0"
                % (each, self._stop_folder(), _zap_code(match, keep), each))

    def cancel_command(self, job_id):
        """Stop every run of the job on the resource and remove its folders."""
        return "%s; %s" % (self._home_code("exit 0"),
                           self._stop_all('"$h"/job-%s.*' % shlex.quote(job_id),
                                          _job_patterns(job_id)))

    def sweep_command(self, keep=()):
        """Stop and remove every job folder under RESOURCEHOME (what a crash of
        the appliance left there), and every process marked for one, except
        those of the jobs in keep (running)."""
        return "%s; %s" % (self._home_code("exit 0"),
                           self._stop_all('"$h"/job-*', '"$h"/job-*',
                                          "|".join(_job_patterns(job_id) for job_id in keep)))


def _job_patterns(job_id):
    """Case patterns for the paths in and under any run folder of the job."""
    run = '"$h"/job-%s' % shlex.quote(job_id)
    return "%s|%s.*|%s/*" % (run, run, run)


def control_path(ssh_dir, name, host, port, user):
    """The ControlMaster socket of one resource: named by a hash of all that
    tells resources apart (never cut to a common prefix), in ssh_dir, or in a
    private folder with a short path when ssh_dir's path is too long for a
    unix socket.  If that folder is not this user's alone: no master."""
    digest = hashlib.sha256(("%s\0%s\0%s\0%s" % (name, host, port, user)).encode()).hexdigest()
    path = os.path.join(ssh_dir, "cm-" + digest[:16])
    if len(path) <= CONTROL_PATH_MAX:
        return path
    short = os.path.join(tempfile.gettempdir(), "mig-cm-%d-%s" % (
        os.getuid(), hashlib.sha256(os.path.abspath(ssh_dir).encode()).hexdigest()[:12]))
    try:
        os.mkdir(short, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(short)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return "none"  # ssh then makes a connection of its own each time
    return os.path.join(short, "cm-" + digest[:16])


def _zap_code(match, keep=""):
    """Shell code that kills every process of MIGUSER whose MIGJOB marker or
    working folder the case patterns match names (and keep does not), round
    after round until a round finds none (a process that forks meanwhile is
    found in the next).  /proc shows a process's environment as it started:
    a job drops the marker only by starting a program without it."""
    return ("i=0; while [ $i -lt %d ]; do i=$((i+1)); hit=; for p in /proc/[0-9]*; do "
            "[ -O \"$p\" ] && [ \"${p#/proc/}\" != $$ ] || continue; "
            "m=$(tr '\\0' '\\n' 2>/dev/null < \"$p/environ\" | sed -n 's/^MIGJOB=//p'); "
            "c=$(readlink \"$p/cwd\" 2>/dev/null); c=${c%% (deleted)}; "
            "for x in \"$m\" \"$c\"; do case \"$x\" in ''%s) ;; %s) kill -KILL \"${p#/proc/}\" "
            "2>/dev/null && hit=1;; esac; done; done; [ -n \"$hit\" ] || break; done"
            % (ZAP_ROUNDS, "|" + keep if keep else "", match))
