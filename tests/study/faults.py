"""Trainables that wrap the real one and break it on purpose (shipped to Ray workers by value)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from study.driver import run_point


def _is_target(config: dict) -> bool:
    p = config["trial"]["point"]
    return p["optimizer"] == os.environ["BASIN_TEST_TARGET_OPT"] and abs(p["lr"] - float(os.environ["BASIN_TEST_TARGET_LR"])) < 1e-12


def kill_first_attempt(config: dict) -> None:
    """The target point's first attempt SIGKILLs its own worker process mid-trial; retries run normally."""
    marker = Path(os.environ["BASIN_TEST_MARKER"])
    if _is_target(config) and not marker.exists():
        marker.write_text(str(os.getpid()))

        def die():
            time.sleep(float(os.environ.get("BASIN_TEST_KILL_AFTER", "1.0")))
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=die, daemon=True).start()
    run_point(config)


def invalid_config_for_target(config: dict) -> None:
    """The target point reaches its worker with a negative α: the run raises, the trial must be FAIL."""
    if _is_target(config):
        config = {**config, "trial": {**config["trial"], "run": {**config["trial"]["run"], "lr": -1.0}}}
    run_point(config)
