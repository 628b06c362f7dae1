"""A last-resort watchdog: a test item still running after five minutes ends the run.

pytest-timeout (120 s, signal method) fails a slow test and the run goes on,
but it fires once per item: a teardown that then hangs, or a hang where no
Python code runs, would stall the suite until CI's own limit and print
nothing. This timer covers setup, call and teardown together; when it fires
it prints every thread's stack to the terminal and exits, so the run fails
quickly and says where it stuck. Brokers and daemons the tests started are
killed first, so none outlives the run.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.support.brokers import kill_started_clusters

HARD_TIMEOUT_S = 300.0
EXIT_CODE = 3


def _kill_children() -> None:
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
            if ppid == me:
                os.kill(int(stat.parent.name), signal.SIGKILL)


def _abort(item: pytest.Item) -> None:
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    sys.stderr.write(
        f"\n+++ watchdog: {item.nodeid} still running after {HARD_TIMEOUT_S:.0f} s;"
        " stacks of every thread follow +++\n"
    )
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    _kill_children()
    kill_started_clusters()
    os._exit(EXIT_CODE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    timer = threading.Timer(HARD_TIMEOUT_S, _abort, args=(item,))
    timer.daemon = True
    timer.start()
    try:
        return (yield)
    finally:
        timer.cancel()
