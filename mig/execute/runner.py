"""Job runners: long-lived launcher processes that start jobs on request.

A launcher (see launcher.py) is started once per slot, as root, and forks a
fresh process per job that becomes the job's own identity; starting it once
keeps the per-job cost to a small fork and one exec.  The protocol is one
JSON line in per job (and ``kill`` to end the running one), and lines out:
``ready FEATURES`` once, then ``start PID`` and ``done PID EXITCODE REASON``
per job.  Only the launcher's own reports are believed: the job cannot reach
the launcher (another uid), so nothing a job writes is ever acted upon.

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


class Request:
    """One job for a runner: ``line`` is what the launcher gets; on_start(pid)
    when it runs, on_end(exit code, reason) when it ends (code None when the
    runner died or the request was withdrawn).  Both are called in the pool's
    event thread (on_end(None, ...) also in the thread that withdraws or closes)."""

    __slots__ = ("line", "on_start", "on_end", "job")

    def __init__(self, line, on_start, on_end, job=None):
        self.line, self.on_start, self.on_end, self.job = line, on_start, on_end, job


class Runner:
    """One launcher process, its pipes and what it has reported so far."""

    def __init__(self, pool):
        self.current = None
        self.pending = b""  # a report line not complete yet
        self.features = None
        # The command, or (command, its first line in: the launcher's settings).
        command = pool.command() if callable(pool.command) else pool.command
        command, greeting = command if isinstance(command, tuple) else (command, b"")
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=pool.stderr, env=pool.env,
                                     bufsize=0, start_new_session=True)
        self.records = pool.records
        if self.records:
            record_runner(self.records, self.proc.pid)  # for recovery after a crash
        self.out = self.proc.stdout.fileno()
        os.set_blocking(self.out, False)
        if greeting:
            with contextlib.suppress(OSError):  # a launcher that died is seen as lost
                self._write(greeting)

    def send(self, request):
        """Hand the runner a job (call with the pool's lock held); OSError if
        the runner is gone, and then it has no job.  The job is its current one
        before the write: the runner may report its start at once."""
        self.current = request
        try:
            self._write(request.line)
        except OSError:
            self.current = None
            raise

    def _write(self, data):
        view = memoryview(data)
        while view:  # a pipe write of this size is whole, but be exact
            view = view[self.proc.stdin.write(view):]

    def end_job(self):
        """Ask the launcher to kill every process of its running job."""
        with contextlib.suppress(OSError):
            self._write(b"kill\n")

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

    def __init__(self, command, env, size=0, records=None, stderr=subprocess.DEVNULL,
                 on_lost=None):
        self.command, self.env, self.size, self.stderr = command, env, size, stderr
        self.on_lost = on_lost  # called with the request of a runner that died
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
        request.on_end(None, "withdrawn")
        return True

    def end(self, request):
        """Kill the job of a request that runs now; False if it does not run."""
        with self.lock:
            for runner in self.all:
                if runner.current is request:
                    runner.end_job()
                    return True
        return False

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
            request.on_end(None, "shutdown")
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
            if word == b"ready":
                runner.features = rest.decode("ascii", "replace")
                continue
            if current is None:
                continue
            if word == b"start":
                current.on_start(int(rest))
            elif word == b"done":
                fields = rest.decode("ascii", "replace").split()
                self._finished(runner)  # the next job starts before we report
                current.on_end(int(fields[1]), fields[2] if len(fields) > 2 else "-")

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
            if self.on_lost is not None:
                self.on_lost(request)  # the launcher cannot end the job now
            request.on_end(None, "lost")
