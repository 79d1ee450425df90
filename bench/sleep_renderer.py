"""A command renderer for bench_scheduling.py: sleeps a fixed time and records start and finish.

Usage: sleep_renderer.py RECORD SECONDS JOB_ID ENGINE ATTEMPT OUTPUT

Each start and finish appends one JSON line to RECORD with the time (``time.time()``), the
job id, engine, attempt and worker, which is the process id of the parent: the worker runs
this script directly, without a shell. The script imports only a few standard modules and
takes positional arguments, so that interpreter startup adds little time before the start
record.
"""

import json
import os
import sys
import time

USAGE = "usage: sleep_renderer.py RECORD SECONDS JOB_ID ENGINE ATTEMPT OUTPUT\n"
# Any non-empty file counts as the video: the render activity only checks that it exists.
FAKE_VIDEO = b"\x00\x00\x00\x18ftypmp42 benchmark video"


def record(path: str, fields: dict) -> None:
    line = json.dumps({"time": time.time(), **fields}) + "\n"
    # One write call on an O_APPEND file, so concurrent renderers never interleave lines.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) != 6:
        sys.stderr.write(USAGE)
        return 2
    record_path, seconds, job_id, engine, attempt, output = argv
    fields = {
        "job_id": job_id,
        "engine": engine,
        "attempt": int(attempt),
        "worker": str(os.getppid()),
    }
    record(record_path, {"event": "start", **fields})
    time.sleep(float(seconds))
    with open(output, "wb") as file:
        file.write(FAKE_VIDEO)
    record(record_path, {"event": "finish", **fields})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
