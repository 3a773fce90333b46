"""Job runners: long-lived bash processes that start job scripts on request.

Starting bash (and dropping privileges with setpriv) for every job costs a
few milliseconds of exec and dynamic loading; a runner is started once, as
the job user, and forks a fresh subshell per job instead.  Each job's
subshell gets its own process group (job control), so it can be stopped as
a whole.  The protocol is two lines in (folder, script name) and two lines
out (``start PID``, then ``done PID EXITCODE``).  The same shape serves a
pull agent later: a process that is handed work and reports back.
"""

import contextlib
import os
import signal
import subprocess
import threading

RUNNER_SCRIPT = r"""
set -m
while IFS= read -r __mig_d && IFS= read -r __mig_s; do
  ( set +m; trap - INT QUIT; cd -- "$__mig_d" || exit 97
    export HOME="$__mig_d" TMPDIR="$__mig_d"
    __mig_x=$__mig_s; unset __mig_d __mig_s; . "./$__mig_x" ) </dev/null >/dev/null 2>&1 &
  __mig_p=$!
  printf 'start %d\n' "$__mig_p"
  wait "$__mig_p"
  printf 'done %d %d\n' "$__mig_p" "$?"
done
"""


class RunnerLost(RuntimeError):
    """The runner process ended while it ran a job."""


class Runner:
    """One bash runner process; runs one job at a time."""

    def __init__(self, prefix, env):
        self.proc = subprocess.Popen(prefix + ["/bin/bash", "-c", RUNNER_SCRIPT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True,
                                     bufsize=1, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def run(self, folder, script_name, on_start):
        """Run folder/script_name; on_start(pgid) once it runs; returns the exit code."""
        try:
            self.proc.stdin.write("%s\n%s\n" % (folder, script_name))
            self.proc.stdin.flush()
            started = self.proc.stdout.readline().split()
            if len(started) != 2 or started[0] != "start":
                raise RunnerLost("the runner did not start the job")
            on_start(int(started[1]))
            finished = self.proc.stdout.readline().split()
        except (OSError, ValueError) as exc:
            raise RunnerLost(str(exc)) from None
        if len(finished) != 3 or finished[0] != "done":
            raise RunnerLost("the runner ended while the job ran")
        return int(finished[2])

    def stop(self):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()


class RunnerPool:
    """Idle runners handed out one per running job; new ones made on demand."""

    def __init__(self, prefix, env):
        self.prefix, self.env = prefix, env
        self.lock = threading.Lock()
        self.idle = []
        self.all = set()

    def acquire(self):
        with self.lock:
            while self.idle:
                runner = self.idle.pop()
                if runner.alive():
                    return runner
                self.all.discard(runner)
            runner = Runner(self.prefix, self.env)
            self.all.add(runner)
            return runner

    def release(self, runner):
        with self.lock:
            if runner.alive():
                self.idle.append(runner)
                return
            self.all.discard(runner)
        runner.stop()

    def discard(self, runner):
        with self.lock:
            self.all.discard(runner)
        runner.stop()

    def close(self):
        with self.lock:
            runners, self.all, self.idle = list(self.all), set(), []
        for runner in runners:
            runner.stop()
