"""A command renderer for tests: records each start and finish, then acts as --behaviour selects.

Behaviours: ``ok`` sleeps ``--seconds`` and writes a small file at ``--output``;
``slow_first`` does the same, but sleeps only 0.2 s from the second attempt on; a job titled
``blocker`` sleeps 3 s, to hold a slot while a test queues more jobs; ``hang`` starts
a child process and both sleep until killed; ``invalid`` exits 3; ``crash`` exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BLOCKER_SECONDS = 3.0


def record(path: str, **fields: object) -> None:
    line = json.dumps({"time": time.time(), "pid": os.getpid(), **fields}) + "\n"
    # One write call on an O_APPEND file, so concurrent renderers never interleave lines.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("record", "behaviour", "job-id", "job-type", "engine", "priority", "attempt"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--seconds", type=float, default=0.0)
    args = parser.parse_args()

    with open(args.input, encoding="utf-8") as file:
        job = json.load(file)
    common = {
        "job_id": args.job_id,
        "job_type": args.job_type,
        "engine": args.engine,
        "priority": args.priority,
        "attempt": int(args.attempt),
    }
    if args.behaviour == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        record(args.record, event="start", child_pid=child.pid, input_id=job["id"], **common)
        time.sleep(3600)
        return 1
    record(args.record, event="start", output=args.output, input_id=job["id"], **common)
    if args.behaviour == "invalid":
        sys.stderr.write("title is not renderable\n")
        return 3
    if args.behaviour == "crash":
        sys.stderr.write("renderer crashed\n")
        return 1
    seconds = args.seconds
    if args.behaviour == "slow_first" and int(args.attempt) > 1:
        seconds = 0.2
    if job["content"]["title"] == "blocker":
        seconds = BLOCKER_SECONDS
    time.sleep(seconds)
    with open(args.output, "wb") as file:
        file.write(b"\x00\x00\x00\x18ftypmp42 fake video")
    record(args.record, event="finish", **common)
    return 0


if __name__ == "__main__":
    sys.exit(main())
