"""The executor contract shared by every way of running jobs.

An executor receives a job record and the exe unit chosen for it, runs the
job without blocking the caller, and reports exactly one ``Outcome`` per
job through the callback it was given (unless the job was cancelled, in
which case it only cleans up).  Local processes, ssh/scp resources, batch
systems reached by ssh and pull agents all fit this shape.
"""

from dataclasses import dataclass, field


@dataclass
class Outcome:
    """How a job ended on its resource."""

    state: str  # FINISHED, or RETRY when the resource failed it (timeout, lost)
    message: str = ""
    exit_codes: list = field(default_factory=list)
    io_status: list = field(default_factory=list)
    verified: str = "NO"  # VERIFYFILES verdict
    resource_down: bool = False  # the resource failed (not the job): take it out a while


class Executor:
    kind = "base"

    def start(self, record, unit, done):
        """Begin running record on unit; later call done(job_id, Outcome).

        The grid's ``done`` also has ``done.many([(job_id, Outcome), ...])``
        for jobs that ended together: one durable write records them all."""
        raise NotImplementedError

    def cancel(self, job_id):
        """Stop a running job and clean up; no Outcome is reported."""
        raise NotImplementedError

    def running(self):
        return []

    def started_at(self, job_id):
        """When the job really started running (epoch seconds); 0 while it
        was handed over but waits (for a slot, in a batch queue); None when
        this executor cannot tell."""
        return None

    def shutdown(self):
        """Stop every job this executor started (appliance shutdown)."""
