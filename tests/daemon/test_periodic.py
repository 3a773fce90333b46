"""The periodic thread behind the checkpoint, keep-alive and resource sync."""

import threading
import time

from mig.daemon.periodic import Periodic


def test_a_failed_round_is_logged_and_the_next_rounds_run(caplog):
    rounds = []
    enough = threading.Event()

    def work():
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("disk went away")
        if len(rounds) >= 3:
            enough.set()
    periodic = Periodic("test-periodic", 0.01, work, "test round")
    periodic.start()
    try:
        assert enough.wait(10)
    finally:
        started = time.monotonic()
        periodic.stop()
    assert time.monotonic() - started < 5 and not periodic.thread.is_alive()
    assert "test round failed" in caplog.text and "disk went away" in caplog.text


def test_no_interval_means_no_thread():
    periodic = Periodic("never", 0, lambda: None)
    periodic.start()
    assert periodic.thread is None
    periodic.stop()  # harmless
