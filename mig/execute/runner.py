"""Job runners: long-lived bash processes that start job scripts on request.

Starting bash (and dropping privileges with setpriv) for every job costs a
few milliseconds of exec and dynamic loading; a runner is started once, as
the job user, and forks a fresh subshell per job instead.  Each job's
subshell gets its own process group (job control), so it can be stopped as
a whole.  The protocol is two lines in (folder, script name) and two lines
out (``start PID``, then ``done PID EXITCODE``).

One event thread reads what every runner reports.  When a job ends it sends
the next waiting job to that runner first, so a freed slot starts its next
job at once, and then reports the end.  A single thread (rather than one per
runner and one per job) matters for speed: every hand-off between Python
threads costs context switches and a turn of the interpreter lock.  The same
shape serves a pull agent later: a process that is handed work and reports
back.
"""

import collections
import contextlib
import logging
import os
import selectors
import signal
import subprocess
import threading

from mig.execute.leftovers import forget_runner, record_runner

log = logging.getLogger("mig.runner")

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
    None when the runner died or the request was withdrawn) when it ends.
    Both are called in the pool's event thread (on_end(None) also in the
    thread that withdraws or closes)."""

    __slots__ = ("folder", "script", "on_start", "on_end")

    def __init__(self, folder, script, on_start, on_end):
        self.folder, self.script, self.on_start, self.on_end = folder, script, on_start, on_end


class Runner:
    """One bash runner process, its pipes and what it has reported so far."""

    def __init__(self, pool):
        self.current = None
        self.pending = b""  # a report line not complete yet
        self.proc = subprocess.Popen(pool.prefix + ["/bin/bash", "-c", RUNNER_SCRIPT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=pool.env,
                                     bufsize=0, start_new_session=True)
        self.records = pool.records
        if self.records:
            record_runner(self.records, self.proc.pid)  # for recovery after a crash
        self.out = self.proc.stdout.fileno()
        os.set_blocking(self.out, False)

    def send(self, request):
        """Hand the runner a job (call with the pool's lock held); OSError if
        the runner is gone, and then it has no job.  The job is its current one
        before the write: the runner may report its start at once."""
        self.current = request
        data = ("%s\n%s\n" % (request.folder, request.script)).encode()
        view = memoryview(data)
        try:
            while view:  # a pipe write of this size is whole, but be exact
                view = view[self.proc.stdin.write(view):]
        except OSError:
            self.current = None
            raise

    def kill(self):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self):
        self.kill()
        self.proc.wait()
        if self.records:
            forget_runner(self.records, self.proc.pid)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


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
        self.selector = selectors.DefaultSelector()
        self.thread = None
        self.wake_read, self.wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self.wake_read, selectors.EVENT_READ, None)

    # -- from any thread ----------------------------------------------------------
    def submit(self, request):
        with self.lock:
            if self.closed:
                raise RuntimeError("the local resource is shutting down")
            if self.idle:
                runner = self.idle.pop()
            elif not self.size or len(self.all) < self.size:
                runner = self._new_runner()
            else:
                self.waiting.append(request)
                return
            self._hand(runner, request)

    def withdraw(self, request):
        """Take back a job that waits for a runner; False if it was sent already."""
        with self.lock:
            try:
                self.waiting.remove(request)
            except ValueError:
                return False
        request.on_end(None)
        return True

    def close(self, timeout=10.0):
        """Stop every runner (and the jobs in them); waiting jobs end with None."""
        with self.lock:
            self.closed = True
            runners = list(self.all)
            waiting, self.waiting = list(self.waiting), collections.deque()
            thread = self.thread
        for runner in runners:
            runner.kill()  # the event thread sees them end and reports their jobs
        with contextlib.suppress(OSError):
            os.write(self.wake_write, b"x")  # also wakes it when no runner is left
        for request in waiting:
            request.on_end(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self.lock:
            left, self.all, self.idle = list(self.all), set(), []
        for runner in left:  # only if the event thread did not get to them
            runner.stop()
        if thread is None or not thread.is_alive():
            self.selector.close()
            for fd in (self.wake_read, self.wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- with the lock held ---------------------------------------------------------
    def _hand(self, runner, request):
        """Send a job to a runner; if the runner has died, the job goes back to
        the head of the queue, for the runner that replaces it (see _lost)."""
        try:
            runner.send(request)
        except OSError:
            self.waiting.appendleft(request)

    def _new_runner(self):
        runner = Runner(self)
        self.all.add(runner)
        self.selector.register(runner.out, selectors.EVENT_READ, runner)
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name="runner-events",
                                           daemon=True)
            self.thread.start()
        return runner

    # -- the event thread -------------------------------------------------------------
    def _loop(self):
        while True:
            with self.lock:
                if self.closed and not self.all:
                    return
            try:
                events = self.selector.select()
            except (OSError, ValueError):  # a runner closed under us
                continue
            for key, _mask in events:
                if key.data is None:  # close() wants us to look again
                    with contextlib.suppress(OSError):
                        os.read(self.wake_read, 64)
                    continue
                try:
                    self._read(key.data)
                except Exception:  # the thread must outlive any one job
                    log.exception("handling a runner report failed")

    def _read(self, runner):
        try:
            data = os.read(runner.out, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost(runner)
            return
        lines = (runner.pending + data).split(b"\n")
        runner.pending = lines.pop()
        for line in lines:
            word, _, rest = line.partition(b" ")
            current = runner.current
            if current is None:
                continue
            if word == b"start":
                current.on_start(int(rest))
            elif word == b"done":
                self._finished(runner)  # the next job starts before we report
                current.on_end(int(rest.split()[1]))

    def _finished(self, runner):
        """A runner's job ended: give it the next waiting job, or let it idle."""
        with self.lock:
            runner.current = None
            if self.closed:
                return
            if self.waiting:
                self._hand(runner, self.waiting.popleft())
                return
            self.idle.append(runner)

    def _lost(self, runner):
        """The runner ended: fail its job, and start a new runner for waiting ones."""
        with self.lock:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(runner.out)
            self.all.discard(runner)
            with contextlib.suppress(ValueError):
                self.idle.remove(runner)
            request, runner.current = runner.current, None
            if self.waiting and not self.closed:
                self._hand(self._new_runner(), self.waiting.popleft())
        runner.stop()
        if request is not None:
            request.on_end(None)
