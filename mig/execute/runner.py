"""Job runners: long-lived bash processes that start job scripts on request.

Starting bash (and dropping privileges with setpriv) for every job costs a
few milliseconds of exec and dynamic loading; a runner is started once, as
the job user, and forks a fresh subshell per job instead.  Each job's
subshell gets its own process group (job control), so it can be stopped as
a whole.  The protocol is two lines in (folder, script name) and two lines
out (``start PID``, then ``done PID EXITCODE``).

Each runner has a reader thread of its own.  When a job ends, that thread
sends the next waiting job to the runner before it reports the end, so a
freed slot starts its next job without waiting for any other thread.  The
same shape serves a pull agent later: a process that is handed work and
reports back.
"""

import collections
import contextlib
import os
import signal
import subprocess
import threading

from mig.execute.leftovers import forget_runner, record_runner

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


class Request:
    """One job for a runner: on_start(pgid) when it runs, on_end(exit code, or
    None when the runner died or the request was withdrawn) when it ends."""

    __slots__ = ("folder", "script", "on_start", "on_end")

    def __init__(self, folder, script, on_start, on_end):
        self.folder, self.script, self.on_start, self.on_end = folder, script, on_start, on_end


class Runner:
    """One bash runner process and the thread that reads what it reports."""

    def __init__(self, pool):
        self.pool = pool
        self.current = None
        self.proc = subprocess.Popen(pool.prefix + ["/bin/bash", "-c", RUNNER_SCRIPT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=pool.env, text=True,
                                     bufsize=1, start_new_session=True)
        if pool.records:
            record_runner(pool.records, self.proc.pid)  # for recovery after a crash
        self.reader = threading.Thread(target=self._read, name="runner-%d" % self.proc.pid,
                                       daemon=True)

    def send(self, request):
        """Hand the runner a job (call with the pool's lock held)."""
        self.current = request
        self.proc.stdin.write("%s\n%s\n" % (request.folder, request.script))
        self.proc.stdin.flush()

    def _read(self):
        try:
            for line in self.proc.stdout:
                word, _, rest = line.partition(" ")
                if word == "start" and self.current is not None:
                    self.current.on_start(int(rest))
                elif word == "done" and self.current is not None:
                    ended = self.current
                    self.pool.finished(self)  # the next job starts before we report
                    ended.on_end(int(rest.split()[1]))
        except (OSError, ValueError):
            pass
        self.pool.lost(self)

    def stop(self):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.pool.records:
            forget_runner(self.pool.records, self.proc.pid)
        with contextlib.suppress(OSError):
            self.proc.stdin.close()


class RunnerPool:
    """At most ``size`` runners (0: as many as jobs), each running one job at a
    time; jobs beyond that wait in order for the next runner that frees up."""

    def __init__(self, prefix, env, size=0, records=None):
        self.prefix, self.env, self.size = prefix, env, size
        self.records = records  # a folder noting live runners (see leftovers.py)
        self.lock = threading.Lock()
        self.idle = []
        self.all = set()
        self.waiting = collections.deque()
        self.closed = False

    def submit(self, request):
        with self.lock:
            if self.closed:
                raise RuntimeError("the local resource is shutting down")
            if not self.idle and (not self.size or len(self.all) < self.size):
                runner = Runner(self)
                self.all.add(runner)
                runner.send(request)
                runner.reader.start()
                return
            if self.idle:
                self.idle.pop().send(request)
            else:
                self.waiting.append(request)

    def withdraw(self, request):
        """Take back a job that waits for a runner; False if it was sent already."""
        with self.lock:
            try:
                self.waiting.remove(request)
            except ValueError:
                return False
        request.on_end(None)
        return True

    def finished(self, runner):
        """A runner's job ended: give it the next waiting job, or let it idle."""
        with self.lock:
            runner.current = None
            if self.closed:
                return
            if self.waiting:
                try:
                    runner.send(self.waiting[0])
                    self.waiting.popleft()
                    return
                except OSError:
                    runner.current = None
                    return  # the runner is gone: lost() replaces it
            self.idle.append(runner)

    def lost(self, runner):
        """The runner ended: fail its job, and start a new runner for waiting ones."""
        with self.lock:
            self.all.discard(runner)
            with contextlib.suppress(ValueError):
                self.idle.remove(runner)
            request, runner.current = runner.current, None
            replacement = None
            if self.waiting and not self.closed:
                replacement = Runner(self)
                self.all.add(replacement)
                replacement.send(self.waiting.popleft())
        runner.stop()
        if replacement is not None:
            replacement.reader.start()
        if request is not None:
            request.on_end(None)

    def close(self):
        with self.lock:
            self.closed = True
            runners, self.all, self.idle = list(self.all), set(), []
            waiting, self.waiting = list(self.waiting), collections.deque()
        for runner in runners:
            runner.stop()
        for request in waiting:
            request.on_end(None)
