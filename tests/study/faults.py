"""Trainables that wrap the real one and break it on purpose (shipped to Ray workers by value)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from study.driver import run_pack


def _target(p: dict) -> bool:
    return p["optimizer"] == os.environ["BASIN_TEST_TARGET_OPT"] and abs(p["lr"] - float(os.environ["BASIN_TEST_TARGET_LR"])) < 1e-12


def _is_target(config: dict) -> bool:
    return any(_target(p) for p in config["trial"]["points"])


def kill_first_attempt(config: dict) -> None:
    """The target point's pack, on its first attempt, SIGKILLs its own worker process mid-trial; retries run
    normally."""
    marker = Path(os.environ["BASIN_TEST_MARKER"])
    if _is_target(config) and not marker.exists():
        marker.write_text(str(os.getpid()))

        def die():
            time.sleep(float(os.environ.get("BASIN_TEST_KILL_AFTER", "1.0")))
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=die, daemon=True).start()
    run_pack(config)


def invalid_config_for_target(config: dict) -> None:
    """The target points reach their worker with a negative α: those runs raise, their trials must be FAIL."""
    trial = config["trial"]
    runs = [{**r, "lr": -1.0} if _target(p) else r for p, r in zip(trial["points"], trial["runs"])]
    run_pack({**config, "trial": {**trial, "runs": runs}})
