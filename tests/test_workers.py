"""The app's background threads: closing waits for the job in flight (a render cut off inside torch when the
interpreter exits aborts the process with "terminate called without an active exception")."""

from __future__ import annotations

import threading
import time

from app.gui.workers import LatestWorker, join_threads, start_thread


def test_closing_a_worker_lets_its_render_in_flight_finish():
    started, done = threading.Event(), []

    def slow(x):
        started.set()
        time.sleep(0.5)
        done.append(x)
        return x

    w = LatestWorker("test-slow", slow)
    w.submit(1)
    assert started.wait(10)
    w.submit(2)  # pending when the worker closes: dropped, never rendered
    w.close()
    assert join_threads(timeout=30) == [] and done == [1]


def test_join_names_the_threads_still_running_after_the_timeout():
    release = threading.Event()
    start_thread("test-stuck", lambda: release.wait(30))
    assert join_threads(timeout=0.05) == ["test-stuck"]
    release.set()
    assert join_threads(timeout=30) == []
