"""Measure scheduling order, render limits and slot utilization with a renderer that only sleeps.

Run: .venv/bin/python bench/bench_scheduling.py [--workload NAME] [--render-seconds 1.0]

Each workload starts its own stack in a temporary folder: a Temporal dev server with the
project's dev-server flags, an embedded PostgreSQL, the API (``videoq api``) and one or two
``python -m worker`` processes, all on free loopback ports. Both engines use the command
renderer ``bench/sleep_renderer.sh``, which sleeps ``--render-seconds`` and records each start
and finish. Every job is submitted through POST /v1/jobs with a user token, at most
SUBMIT_CONCURRENCY requests in flight. Workloads:

- ``mixed``: 300 jobs, 10% doubt, 30% topic_short, 60% daily_ca, 30% of each type Manim, in
  an order shuffled with ``--seed``, submitted as fast as the API accepts them.
- ``mixed-peak``: the same with a peak window covering the run, so 15 renders (6 Manim).
- ``two-workers``: ``mixed`` with two worker processes, a fleet of 20 renders (8 Manim).
- ``burst``: 5,000 standard daily_ca jobs, then 20 doubt jobs (alternately standard and Manim)
  one every 0.5 s while the backlog drains. The run stops once every doubt has started.

The script prints one table per workload, with each figure's target and PASS or FAIL, and a
summary table when it runs several workloads. A job's submit time is the ``enqueued_at`` that
the API returns, except for the doubt start delay, measured from when its POST was sent. Rows
marked "render queue" take it from the ``ActivityTaskScheduled`` event in the job's workflow
history instead, read after the renders. The exit code is 0 unless the benchmark itself failed,
whatever the targets.
"""

# ruff: noqa: T201 - the printed figures are this script's result.

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from api.auth import issue_token
from videoq.db import migrate
from videoq.devstack import DevStack, free_port
from videoq.jobs import PRIORITY_BY_JOB_TYPE, PRIORITY_KEYS, Engine, JobType
from videoq.schedule_metrics import (
    Run,
    dispatch_gaps,
    drain_ratio,
    fifo_violations,
    max_running,
    percentile,
    priority_inversions,
    utilization,
)
from videoq.settings import Settings
from videoq.slots import SlotLimits

REPO = Path(__file__).resolve().parent.parent
SLEEP_RENDERER = REPO / "bench" / "sleep_renderer.sh"
TASK_QUEUE_PREFIX = "bench"
BENCH_USER = "bench-student"

SUBMIT_CONCURRENCY = 16
REQUEST_TIMEOUT_SECONDS = 30.0
RECORD_POLL_SECONDS = 0.25
WORKERS_READY_TIMEOUT_SECONDS = 60.0
# Maximum wait for every job to finish: this many times the ideal drain time, plus the margin.
# A run that takes longer fails the drain target. Waiting longer would not help, because a
# failed render is retried only after 5 minutes.
DRAIN_TIMEOUT_FACTOR = 5.0
DRAIN_TIMEOUT_MARGIN_SECONDS = 120.0
# How long after the last doubt's submission the burst waits for every doubt to start.
DOUBT_START_TIMEOUT_SECONDS = 60.0
DOUBT_INTERVAL_SECONDS = 0.5

TARGET_UTILIZATION = 0.95
TARGET_GAP_P99_SECONDS = 0.5
TARGET_DRAIN_RATIO = 1.1
TARGET_DOUBT_DELAY_P99_SECONDS = 2.0

# Shares of the mixed workloads.
JOB_TYPE_SHARES = {JobType.DOUBT: 0.1, JobType.TOPIC_SHORT: 0.3, JobType.DAILY_CA: 0.6}
MANIM_SHARE = 0.3


@dataclass(frozen=True)
class Workload:
    """One benchmark scenario: which jobs, how many worker processes, peak hours or not."""

    name: str
    jobs: int
    workers: int = 1
    peak: bool = False
    # Doubts submitted one by one after the bulk submission. Only the burst has them.
    doubts: int = 0


WORKLOADS = {
    "mixed": Workload("mixed", jobs=300),
    "mixed-peak": Workload("mixed-peak", jobs=300, peak=True),
    "two-workers": Workload("two-workers", jobs=300, workers=2),
    "burst": Workload("burst", jobs=5000, doubts=20),
}


@dataclass(frozen=True)
class Options:
    """Command-line options that every workload uses."""

    render_seconds: float
    seed: int
    keep_data: bool
    # Run the job workflows in a process of their own, and renders in the worker processes.
    split_roles: bool = False


@dataclass(frozen=True)
class JobSpec:
    index: int
    job_type: JobType
    engine: Engine


@dataclass
class Submission:
    """A submitted job as the benchmark records it, before its render."""

    spec: JobSpec
    job_id: str
    sent: float
    enqueued: float
    # When the job's workflow scheduled its render activity, read from the workflow history.
    # It stays infinite while the render is not scheduled yet.
    render_scheduled: float = float("inf")
    # When the server recorded the workflow's start, and when a worker picked up its first
    # workflow task. Both come from the history too, for the kept submissions.jsonl.
    workflow_started: float = float("inf")
    first_task_started: float = float("inf")
    # When a worker's poll took the render task (the first attempt's ActivityTaskStarted).
    render_task_started: float = float("inf")
    # When the workflow completed, after its last projection write.
    completed: float = float("inf")

    @property
    def priority_key(self) -> int:
        return PRIORITY_KEYS[PRIORITY_BY_JOB_TYPE[self.spec.job_type]]


@dataclass
class Figure:
    """One row of a result table. ``passed`` is None for a figure without a target."""

    name: str
    value: str
    target: str = ""
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return ""
        return "PASS" if self.passed else "FAIL"


@dataclass
class RenderRecord:
    """The sleep renderer's JSONL file, read incrementally up to its last complete line."""

    path: Path
    offset: int = 0
    starts: dict[str, dict] = field(default_factory=dict)
    finishes: dict[str, dict] = field(default_factory=dict)
    retried: int = 0

    def read_new(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            entry = json.loads(line)
            if entry["attempt"] > 1 and entry["event"] == "start":
                self.retried += 1
            # The first attempt's start and the last finish describe a retried job.
            if entry["event"] == "start":
                self.starts.setdefault(entry["job_id"], entry)
            else:
                self.finishes[entry["job_id"]] = entry


# --- jobs ---------------------------------------------------------------------------------


def mixed_jobs(count: int, rng: random.Random) -> list[JobSpec]:
    """Return ``count`` jobs in the shares of JOB_TYPE_SHARES and MANIM_SHARE, shuffled."""
    kinds = []
    for job_type, share in JOB_TYPE_SHARES.items():
        of_type = round(count * share)
        manim = round(of_type * MANIM_SHARE)
        kinds += [(job_type, Engine.MANIM)] * manim + [(job_type, Engine.STANDARD)] * (
            of_type - manim
        )
    rng.shuffle(kinds)
    return [JobSpec(index, job_type, engine) for index, (job_type, engine) in enumerate(kinds)]


def burst_doubts(first_index: int, count: int) -> list[JobSpec]:
    engines = [Engine.STANDARD, Engine.MANIM]
    return [
        JobSpec(first_index + offset, JobType.DOUBT, engines[offset % 2]) for offset in range(count)
    ]


def job_body(spec: JobSpec) -> dict:
    return {
        "job_type": spec.job_type.value,
        "engine": spec.engine.value,
        "content": {
            "title": f"Benchmark job {spec.index}",
            "text": "Air scatters short blue wavelengths far more than red ones.",
            "steps": ["Sunlight holds every colour", "Blue light scatters the most"],
        },
    }


# --- stack --------------------------------------------------------------------------------


def peak_window_covering_now(timezone: str) -> str:
    """Return an HH:MM-HH:MM window of local time from 10 minutes ago to 4 hours from now."""
    now = datetime.now(ZoneInfo(timezone))
    start = now - timedelta(minutes=10)
    end = now + timedelta(hours=4)
    return f"{start:%H:%M}-{end:%H:%M}"


def stack_env(workload: Workload, data_dir: Path, secret: str, render_seconds: float) -> dict:
    """Environment of the API and worker processes."""
    timezone = os.environ.get("VIDEOQ_TIMEZONE", Settings.model_fields["timezone"].default)
    command = " ".join(
        [
            shlex.quote(str(SLEEP_RENDERER)),
            shlex.quote(str(data_dir / "record.jsonl")),
            str(render_seconds),
            "{job_id} {engine} {attempt} {output}",
        ]
    )
    return {
        "VIDEOQ_JWT_SECRET": secret,
        "VIDEOQ_TASK_QUEUE_PREFIX": TASK_QUEUE_PREFIX,
        "VIDEOQ_OUTPUT_DIR": str(data_dir / "videos"),
        "VIDEOQ_MANIM_RENDERER": "command",
        "VIDEOQ_STANDARD_RENDERER": "command",
        "VIDEOQ_RENDER_COMMAND": command,
        "VIDEOQ_MAX_RENDERS": "10",
        "VIDEOQ_MAX_MANIM_RENDERS": "4",
        "VIDEOQ_PEAK_MULTIPLIER": "1.5",
        "VIDEOQ_PEAK_WINDOWS": peak_window_covering_now(timezone) if workload.peak else "",
        "VIDEOQ_TIMEZONE": timezone,
        "VIDEOQ_FAIRNESS": "off",
        "VIDEOQ_LOG_LEVEL": "WARNING",
    }


async def start_stack(
    workload: Workload, data_dir: Path, env: dict[str, str], split_roles: bool
) -> DevStack:
    stack = DevStack(
        data_dir=data_dir,
        temporal_port=free_port(),
        ui_port=free_port(),
        api_port=free_port(),
    )
    try:
        stack.start_temporal()
        stack.start_postgres()
        await migrate(stack.database_url)
        render_env = env
        if split_roles:
            workflows_env = {**env, "VIDEOQ_WORKER_ROLE": "workflows"}
            stack.start_worker(log=data_dir / "worker-workflows.log", env=workflows_env)
            render_env = {**env, "VIDEOQ_WORKER_ROLE": "renders"}
        for number in range(1, workload.workers + 1):
            stack.start_worker(log=data_dir / f"worker-{number}.log", env=render_env)
        stack.start_api(log=data_dir / "api.log", env=env)
    except BaseException:
        stack.stop()
        raise
    return stack


async def wait_for_pollers(stack: DevStack, client: Client, workers: int) -> None:
    """Wait until ``workers`` distinct processes poll each render task queue."""
    deadline = time.monotonic() + WORKERS_READY_TIMEOUT_SECONDS
    queues = [f"{TASK_QUEUE_PREFIX}-render-{engine.value}" for engine in Engine]
    while True:
        stack.check_children()
        counts = []
        for queue in queues:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                )
            )
            counts.append(len({poller.identity for poller in response.pollers}))
        if all(count >= workers for count in counts):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"render pollers per queue {dict(zip(queues, counts, strict=True))} after "
                f"{WORKERS_READY_TIMEOUT_SECONDS:.0f} s, expected {workers}; see the worker logs"
            )
        await asyncio.sleep(0.2)


# --- submission ---------------------------------------------------------------------------


async def submit(http: httpx.AsyncClient, spec: JobSpec) -> Submission:
    sent = time.time()
    response = await http.post("/v1/jobs", json=job_body(spec))
    if response.status_code != 202:
        raise RuntimeError(
            f"POST /v1/jobs for job {spec.index} returned {response.status_code}: "
            f"{response.text[:300]}"
        )
    body = response.json()
    enqueued = datetime.fromisoformat(body["enqueued_at"]).timestamp()
    return Submission(spec, body["id"], sent, enqueued)


async def submit_all(http: httpx.AsyncClient, specs: list[JobSpec]) -> list[Submission]:
    """Submit in list order with at most SUBMIT_CONCURRENCY requests in flight."""
    gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def one(spec: JobSpec) -> Submission:
        async with gate:
            return await submit(http, spec)

    return await asyncio.gather(*(one(spec) for spec in specs))


async def submit_spaced(
    http: httpx.AsyncClient, specs: list[JobSpec], interval: float
) -> list[Submission]:
    """Send one request every ``interval`` seconds, whatever the earlier responses do."""
    began = time.monotonic()

    async def one(position: int, spec: JobSpec) -> Submission:
        await asyncio.sleep(max(0.0, began + position * interval - time.monotonic()))
        return await submit(http, spec)

    return await asyncio.gather(*(one(position, spec) for position, spec in enumerate(specs)))


async def wait_for(
    stack: DevStack, record: RenderRecord, done: Callable[[], bool], timeout: float, what: str
) -> bool:
    """Poll the record until ``done()`` and return True, or False once ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        stack.check_children()
        record.read_new()
        if done():
            return True
        if time.monotonic() > deadline:
            print(f"  {what}: not reached within {timeout:.0f} s")
            return False
        await asyncio.sleep(RECORD_POLL_SECONDS)


def save_submissions(path: Path, submissions: list[Submission]) -> None:
    """Write one JSON line per job: id, type, engine, priority key, send and enqueue times."""
    with path.open("w", encoding="utf-8") as file:
        for submission in submissions:
            line = {
                "job_id": submission.job_id,
                "job_type": submission.spec.job_type.value,
                "engine": submission.spec.engine.value,
                "priority_key": submission.priority_key,
                "sent": submission.sent,
                "enqueued": submission.enqueued,
                "render_scheduled": submission.render_scheduled,
                "workflow_started": submission.workflow_started,
                "first_task_started": submission.first_task_started,
                "render_task_started": submission.render_task_started,
                "completed": submission.completed,
            }
            file.write(json.dumps(line) + "\n")


async def read_render_scheduled(client: Client, submissions: list[Submission]) -> None:
    """Set each submission's start, first workflow task and render schedule times from its
    workflow history."""
    gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def one(submission: Submission) -> None:
        async with gate:
            handle = client.get_workflow_handle(submission.job_id)
            async for event in handle.fetch_history_events():
                at = event.event_time.ToDatetime(UTC).timestamp()
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    submission.workflow_started = at
                elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                    submission.first_task_started = min(submission.first_task_started, at)
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    submission.render_scheduled = at
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    submission.render_task_started = at
                elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                    submission.completed = at

    await asyncio.gather(*(one(submission) for submission in submissions))


# --- figures ------------------------------------------------------------------------------


def build_runs(
    submissions: list[Submission], record: RenderRecord, *, from_render_queue: bool = False
) -> list[Run]:
    """Build the runs that the figures read.

    A run's submit time is the job's ``enqueued_at``, or with ``from_render_queue`` the time
    its render was scheduled, which is when the render task queue received it.
    """
    runs = []
    for submission in submissions:
        start = record.starts.get(submission.job_id)
        finish = record.finishes.get(submission.job_id)
        runs.append(
            Run(
                job_id=submission.job_id,
                engine=submission.spec.engine.value,
                priority_key=submission.priority_key,
                submitted=(
                    submission.render_scheduled if from_render_queue else submission.enqueued
                ),
                started=start["time"] if start else float("inf"),
                finished=finish["time"] if finish else float("inf"),
                worker=start["worker"] if start else "",
            )
        )
    return runs


def limit_figures(runs: list[Run], workers: int, total: int, manim: int) -> list[Figure]:
    by_worker: dict[str, list[Run]] = {}
    for run in runs:
        if run.worker:
            by_worker.setdefault(run.worker, []).append(run)
    worker_all = max((max_running(group) for group in by_worker.values()), default=0)
    worker_manim = max((max_running(group, "manim") for group in by_worker.values()), default=0)
    fleet_all = max_running(runs)
    fleet_manim = max_running(runs, "manim")
    figures = [
        Figure("max renders per worker", str(worker_all), f"<= {total}", worker_all <= total),
        Figure("max Manim per worker", str(worker_manim), f"<= {manim}", worker_manim <= manim),
    ]
    if workers > 1:
        figures += [
            Figure(
                "max renders, fleet",
                str(fleet_all),
                f"<= {workers * total}",
                fleet_all <= workers * total,
            ),
            Figure(
                "max Manim, fleet",
                str(fleet_manim),
                f"<= {workers * manim}",
                fleet_manim <= workers * manim,
            ),
        ]
    return figures


def order_figures(runs: list[Run]) -> list[Figure]:
    inversions = priority_inversions(runs)
    violations = fifo_violations(runs)
    return [
        Figure("priority inversions", str(inversions), "0", inversions == 0),
        Figure("FIFO violations", str(violations), "0", violations == 0),
    ]


def flow_figures(
    runs: list[Run], workers: int, total: int, manim: int, drained: bool | None
) -> list[Figure]:
    """Compute utilization, dispatch gaps and, unless ``drained`` is None, the drain ratio."""
    used = utilization(runs, workers * total, workers * manim)
    gaps = dispatch_gaps(runs, manim)
    gap_p50 = percentile(gaps, 0.5)
    gap_p99 = percentile(gaps, 0.99)
    figures = [
        Figure(
            "utilization while backlog",
            f"{used:.1%}",
            f">= {TARGET_UTILIZATION:.0%}",
            used >= TARGET_UTILIZATION,
        ),
        Figure("dispatch gap p50", f"{gap_p50 * 1000:.0f} ms ({len(gaps)} gaps)"),
        Figure(
            "dispatch gap p99",
            f"{gap_p99 * 1000:.0f} ms",
            f"<= {TARGET_GAP_P99_SECONDS * 1000:.0f} ms",
            gap_p99 <= TARGET_GAP_P99_SECONDS,
        ),
    ]
    if drained is None:
        return figures
    ratio = drain_ratio(runs, workers * total, workers * manim) if drained else float("inf")
    figures.append(
        Figure(
            "drain / ideal",
            f"{ratio:.2f}x" if drained else "not drained",
            f"<= {TARGET_DRAIN_RATIO:.1f}x",
            ratio <= TARGET_DRAIN_RATIO,
        )
    )
    return figures


def doubt_figures(doubts: list[Submission], record: RenderRecord) -> list[Figure]:
    """Compute the burst's doubt start delays, from sending the POST to the render start."""
    delays: dict[str, list[float]] = {"all": [], "standard": [], "manim": []}
    for doubt in doubts:
        start = record.starts.get(doubt.job_id)
        delay = start["time"] - doubt.sent if start else float("inf")
        delays["all"].append(delay)
        delays[doubt.spec.engine.value].append(delay)
    p99 = percentile(delays["all"], 0.99)
    started = sum(1 for delay in delays["all"] if delay != float("inf"))
    return [
        Figure("doubts started", f"{started} of {len(doubts)}"),
        Figure("doubt start delay p50", seconds_text(percentile(delays["all"], 0.5))),
        Figure(
            "doubt start delay p99",
            seconds_text(p99),
            f"<= {TARGET_DOUBT_DELAY_P99_SECONDS:.0f} s",
            p99 <= TARGET_DOUBT_DELAY_P99_SECONDS,
        ),
        Figure("doubt delay max, standard", seconds_text(max(delays["standard"], default=0))),
        Figure("doubt delay max, Manim", seconds_text(max(delays["manim"], default=0))),
    ]


def render_queue_figures(
    submissions: list[Submission], record: RenderRecord, workers: int, limits: SlotLimits
) -> list[Figure]:
    """Figures without targets that separate the render task queue from the workflow stage.

    Between ``enqueued_at`` and its render's scheduling a job waits for its workflow's first
    task. Order and utilization measured from the scheduling show what the render queue and
    the slots did with the work they had.
    """
    delays = [
        submission.render_scheduled - submission.enqueued
        for submission in submissions
        if submission.render_scheduled != float("inf")
    ]
    runs = build_runs(submissions, record, from_render_queue=True)
    used = utilization(runs, workers * limits.total, workers * limits.manim)
    gaps = dispatch_gaps(runs, limits.manim)
    # How long a finished render waits for its job to complete: the projection's lag.
    finished = [submission for submission in submissions if submission.job_id in record.finishes]
    lags = [
        submission.completed - record.finishes[submission.job_id]["time"]
        for submission in finished
        if submission.completed != float("inf")
    ]
    lag = "none completed"
    if lags:
        lag = f"{seconds_text(percentile(lags, 0.5))}, {seconds_text(percentile(lags, 0.99))}"
    return [
        Figure(
            "enqueued to render scheduled, p50 and p99",
            f"{seconds_text(percentile(delays, 0.5))}, {seconds_text(percentile(delays, 0.99))}",
        ),
        Figure("priority inversions, render queue", str(priority_inversions(runs))),
        Figure("FIFO violations, render queue", str(fifo_violations(runs))),
        Figure("utilization while the render queue has a backlog", f"{used:.1%}"),
        Figure("dispatch gap p99, render queue", f"{percentile(gaps, 0.99) * 1000:.0f} ms"),
        Figure("render finished to job completed, p50 and p99", lag),
        Figure("jobs completed of renders finished", f"{len(lags)} of {len(finished)}"),
    ]


def seconds_text(value: float) -> str:
    return "never" if value == float("inf") else f"{value:.2f} s"


# --- one workload -------------------------------------------------------------------------


async def run_workload(workload: Workload, options: Options) -> list[Figure]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"videoq-bench-{workload.name}-"))
    data_dir.chmod(0o755)  # a root process runs PostgreSQL as another user, which must enter it
    secret = secrets.token_urlsafe(48)
    env = stack_env(workload, data_dir, secret, options.render_seconds)
    # The workers' limits, computed from the settings they get, as their own code does.
    settings = Settings(
        **{key.removeprefix("VIDEOQ_").lower(): value for key, value in env.items()}
    )
    limits = settings.capacity_plan().limits_at(datetime.now(UTC))
    load_before = os.getloadavg()[0]
    print(f"\n## {workload.name}: starting the stack in {data_dir}", flush=True)

    stack = await start_stack(workload, data_dir, env, options.split_roles)
    crashed = True
    complete = False
    try:
        client = await Client.connect(stack.address)
        await wait_for_pollers(stack, client, workload.workers)
        record = RenderRecord(data_dir / "record.jsonl")
        headers = {"Authorization": f"Bearer {issue_token(secret, BENCH_USER)}"}
        pool = httpx.Limits(max_connections=SUBMIT_CONCURRENCY + workload.doubts)
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers=headers, limits=pool, timeout=REQUEST_TIMEOUT_SECONDS
        ) as http:
            figures, complete = await measure(
                workload, stack, client, http, record, limits, options
            )
        crashed = False
    finally:
        stack.stop()
        # A run that timed out keeps its folder too, because its worker log may show why.
        if crashed or not complete or options.keep_data:
            print(f"  logs, record and submissions kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    load_after = os.getloadavg()[0]
    figures.append(
        Figure("load average (1 min), before and after", f"{load_before:.2f}, {load_after:.2f}")
    )
    return figures


async def measure(
    workload: Workload,
    stack: DevStack,
    client: Client,
    http: httpx.AsyncClient,
    record: RenderRecord,
    limits: SlotLimits,
    options: Options,
) -> tuple[list[Figure], bool]:
    """Submit the workload's jobs, wait for their renders and compute the figures.

    Returns the figures and whether every render waited for finished in time (in the burst:
    whether every doubt started).
    """
    rng = random.Random(options.seed)
    if workload.doubts:
        specs = [
            JobSpec(index, JobType.DAILY_CA, Engine.STANDARD) for index in range(workload.jobs)
        ]
    else:
        specs = mixed_jobs(workload.jobs, rng)
    print(
        f"  {workload.workers} worker(s), {limits.total} renders ({limits.manim} Manim) each; "
        f"submitting {len(specs)} jobs",
        flush=True,
    )
    began = time.monotonic()
    submissions = await submit_all(http, specs)
    submit_seconds = time.monotonic() - began
    figures = [
        Figure("jobs submitted", str(len(submissions))),
        Figure("submit rate", f"{len(submissions) / submit_seconds:.0f} jobs/s"),
    ]

    doubts: list[Submission] = []
    if workload.doubts:
        record.read_new()
        backlog = len(submissions) - len(record.starts)
        figures.append(Figure("backlog when the first doubt was sent", f"{backlog} jobs"))
        doubt_specs = burst_doubts(len(specs), workload.doubts)
        doubts = await submit_spaced(http, doubt_specs, DOUBT_INTERVAL_SECONDS)
        complete = await wait_for(
            stack,
            record,
            lambda: all(doubt.job_id in record.starts for doubt in doubts),
            DOUBT_START_TIMEOUT_SECONDS,
            "every doubt started",
        )
        drained = None
    else:
        ideal = len(specs) * options.render_seconds / (workload.workers * limits.total)
        drained = await wait_for(
            stack,
            record,
            lambda: all(sub.job_id in record.finishes for sub in submissions),
            DRAIN_TIMEOUT_FACTOR * ideal + DRAIN_TIMEOUT_MARGIN_SECONDS,
            "every job finished",
        )
        complete = drained
    record.read_new()
    everything = submissions + doubts
    await read_render_scheduled(client, everything)
    save_submissions(record.path.with_name("submissions.jsonl"), everything)

    runs = build_runs(everything, record)
    finished = sum(1 for run in runs if run.finished != float("inf"))
    figures.append(Figure("renders finished", f"{finished} ({record.retried} retried)"))
    figures += limit_figures(runs, workload.workers, limits.total, limits.manim)
    figures += order_figures(runs)
    figures += flow_figures(runs, workload.workers, limits.total, limits.manim, drained)
    if doubts:
        figures += doubt_figures(doubts, record)
    figures += render_queue_figures(everything, record, workload.workers, limits)
    return figures, complete


# --- report -------------------------------------------------------------------------------


def print_table(name: str, figures: list[Figure]) -> None:
    print(f"\n### {name}\n")
    print("| figure | value | target | result |")
    print("| --- | --- | --- | --- |")
    for figure in figures:
        print(f"| {figure.name} | {figure.value} | {figure.target} | {figure.verdict} |")


def print_summary(results: dict[str, list[Figure]]) -> None:
    """Print one table with a column per workload. A figure a workload lacks stays empty."""
    names: list[str] = []
    targets: dict[str, str] = {}
    for figures in results.values():
        for figure in figures:
            if figure.name not in names:
                names.append(figure.name)
            targets[figure.name] = targets.get(figure.name) or figure.target
    print("\n### Summary\n")
    print("| figure | target | " + " | ".join(results) + " |")
    print("| --- | --- |" + " --- |" * len(results))
    for name in names:
        cells = []
        for figures in results.values():
            figure = next((item for item in figures if item.name == name), None)
            cells.append("" if figure is None else f"{figure.value} {figure.verdict}".strip())
        print(f"| {name} | {targets[name]} | " + " | ".join(cells) + " |")


async def run(names: list[str], options: Options) -> int:
    print(
        f"# bench_scheduling, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"render {options.render_seconds:g} s, seed {options.seed}"
        + (", workflows in a process of their own" if options.split_roles else "")
    )
    results = {}
    for name in names:
        results[name] = await run_workload(WORKLOADS[name], options)
        print_table(name, results[name])
    if len(results) > 1:
        print_summary(results)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workload",
        choices=sorted(WORKLOADS),
        action="append",
        help="workload to run, repeatable (default: all four in turn)",
    )
    parser.add_argument(
        "--render-seconds",
        type=float,
        default=1.0,
        help="how long each render sleeps, seconds (default 1.0)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the mixed workloads' job order (default 7)"
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep each workload's folder: logs, renderer record and submissions.jsonl",
    )
    parser.add_argument(
        "--split-roles",
        action="store_true",
        help="run the job workflows in one more worker process, apart from the renders",
    )
    args = parser.parse_args()

    if args.render_seconds <= 0:
        parser.error("--render-seconds must be greater than 0")
    names = args.workload or list(WORKLOADS)
    options = Options(args.render_seconds, args.seed, args.keep_data, args.split_roles)
    # Line by line, so that no child process inherits printed lines still in the buffer. With
    # output to a file, the last lines of the summary were seen twice.
    sys.stdout.reconfigure(line_buffering=True)
    code = asyncio.run(run(names, options))

    sys.stdout.flush()
    # A process that used the Temporal client can abort at interpreter exit in
    # PyGILState_Release (https://github.com/temporalio/sdk-python/issues/300).
    os._exit(code)


if __name__ == "__main__":
    main()
