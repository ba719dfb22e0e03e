"""A hard per-test alarm: a sandbox test can fail, but never hang the suite."""

import signal

import pytest


@pytest.fixture(autouse=True)
def _hard_timeout():
    def on_alarm(signum, frame):
        raise TimeoutError("sandbox test exceeded its 30 s hard limit")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
