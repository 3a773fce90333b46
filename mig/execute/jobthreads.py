"""The local resource's own threads, each reused for every job: the
watchdog that ends jobs whose CPUTIME is spent, a pool of workers for slow
preparation, and the collector that finishes ended jobs in batches."""

import heapq
import itertools
import logging
import queue
import threading
import time

log = logging.getLogger("mig.local")


class Watchdog:
    """One thread that kills jobs whose CPUTIME is spent (a Timer per job costs a thread)."""

    def __init__(self, expire):
        self.expire = expire  # called with a job whose time is up
        self.cond = threading.Condition()
        self.deadlines = []  # heap of (deadline, sequence, job)
        self.sequence = itertools.count()
        self.thread = None

    def watch(self, job, seconds):
        entry = (time.monotonic() + seconds, next(self.sequence), job)
        with self.cond:
            earliest = not self.deadlines or entry < self.deadlines[0]
            heapq.heappush(self.deadlines, entry)
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="watchdog", daemon=True)
                self.thread.start()
            if earliest:  # otherwise the thread already wakes early enough
                self.cond.notify()

    def forget(self, job):
        with self.cond:
            self.deadlines = [d for d in self.deadlines if d[2] is not job]
            heapq.heapify(self.deadlines)

    def _loop(self):
        while True:
            with self.cond:
                while not self.deadlines:
                    self.cond.wait()
                deadline, _seq, job = self.deadlines[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self.cond.wait(delay)
                    continue
                heapq.heappop(self.deadlines)
            job.timed_out = True
            self.expire(job)


class Workers:
    """Threads that are reused from job to job (starting a thread per job costs
    a clone and a round of GIL hand-offs); a new one only when none is idle."""

    def __init__(self, name):
        self.name = name
        self.tasks = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.idle = 0

    def submit(self, function, *args):
        with self.lock:
            spawn = self.idle == 0
            if not spawn:
                self.idle -= 1  # that idle thread takes this task
        self.tasks.put((function, args))
        if spawn:
            threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def _loop(self):
        while True:
            function, args = self.tasks.get()
            try:
                function(*args)
            except Exception:  # the thread stays for the next job
                log.exception("a local job worker failed")
            with self.lock:
                self.idle += 1


class Collector:
    """One thread that finishes the jobs handed to it in batches: all that
    ended while it worked on the previous batch go together (so their
    results share one journal sync)."""

    BATCH = 64

    def __init__(self, finish):
        self.finish = finish  # called with a list of (job, exit code)
        self.queue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.thread = None

    def submit(self, job, code):
        self.queue.put((job, code))
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, name="local-collect",
                                                   daemon=True)
                    self.thread.start()

    def _loop(self):
        while True:
            batch = [self.queue.get()]
            while len(batch) < self.BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.finish(batch)
            except Exception:  # the thread stays for the next jobs
                log.exception("finishing local jobs failed")
