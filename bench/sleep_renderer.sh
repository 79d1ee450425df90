#!/usr/bin/env bash
# A command renderer for bench_scheduling.py: sleeps a fixed time and records start and finish.
#
# Usage: sleep_renderer.sh RECORD SECONDS JOB_ID ENGINE ATTEMPT OUTPUT
#
# Each start and finish appends one JSON line to RECORD with the time, the job id, engine,
# attempt and worker, which is the process id of the parent: the worker runs this script
# directly, without a shell in between. Bash, because it starts in about a millisecond where a
# Python interpreter took about 20 ms, and the start record is written after that startup: the
# benchmark measures the queue, not the renderer's own startup. EPOCHREALTIME (bash 5) gives
# the time without starting another process.
set -euo pipefail

if (($# != 6)); then
    echo "usage: sleep_renderer.sh RECORD SECONDS JOB_ID ENGINE ATTEMPT OUTPUT" >&2
    exit 2
fi
record=$1 seconds=$2 job_id=$3 engine=$4 attempt=$5 output=$6

log_event() {
    # printf writes the whole line with one write call on an O_APPEND file, so concurrent
    # renderers never interleave lines.
    local line
    printf -v line '{"time": %s, "event": "%s", "job_id": "%s", "engine": "%s", "attempt": %d, "worker": "%s"}' \
        "${EPOCHREALTIME/,/.}" "$1" "$job_id" "$engine" "$attempt" "$PPID"
    printf '%s\n' "$line" >>"$record"
}

log_event start
sleep "$seconds"
# Any non-empty file counts as the video: the render activity only checks that it exists.
printf 'benchmark video\n' >"$output"
log_event finish
