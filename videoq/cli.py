"""The ``videoq`` command: dev stack, worker, job submission and the demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from videoq.db import ProjectionUnavailable, describe_target, migrate
from videoq.devstack import DevStack, StackError, free_port
from videoq.jobs import Engine, JobRequest, JobStatus, JobType
from videoq.logs import configure_logging
from videoq.settings import Settings

DEFAULT_DATA_DIR = Path(".videoq")
DEV_USER = "student-1"
DEV_ADMIN = "admin-1"
DEV_TOKEN_TTL = 7 * 24 * 3600


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def run_async(coroutine: Coroutine[Any, Any, int | None]) -> None:
    """Run ``coroutine`` and exit with its status.

    Exits through ``os._exit`` because a process that used the Temporal client can abort at
    interpreter exit in PyGILState_Release (https://github.com/temporalio/sdk-python/issues/300),
    which would turn a success into exit code 134.
    """
    try:
        code = asyncio.run(coroutine) or 0
    except (CliError, StackError) as err:
        sys.stderr.write(f"videoq: {err}\n")
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _validation_message(err: ValidationError) -> str:
    problems = []
    for detail in err.errors():
        location = ".".join(str(part) for part in detail["loc"]) or "job"
        problems.append(f"{location}: {detail['msg']}")
    return "invalid job: " + "; ".join(problems)


def job_request_from_args(args: argparse.Namespace) -> JobRequest:
    if args.file:
        try:
            data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        except OSError as err:
            raise CliError(f"cannot read {args.file}: {err.strerror}") from err
        except json.JSONDecodeError as err:
            raise CliError(f"{args.file} is not valid JSON: {err}") from err
        if not isinstance(data, dict):
            raise CliError(f"{args.file} must hold a JSON object")
        data.setdefault("user_id", args.user)
    else:
        missing = [
            flag for flag, value in (("--title", args.title), ("--text", args.text)) if not value
        ]
        if missing:
            raise CliError(f"missing {' and '.join(missing)} (or pass --file JOB.json)")
        data = {
            "job_type": args.type,
            "engine": args.engine,
            "user_id": args.user,
            "content": {"title": args.title, "text": args.text, "steps": args.step or []},
        }
    try:
        return JobRequest.model_validate(data)
    except ValidationError as err:
        raise CliError(_validation_message(err)) from err


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        details = "; ".join(
            f"VIDEOQ_{'_'.join(str(p) for p in d['loc']).upper() or 'SETTINGS'}: {d['msg']}"
            for d in err.errors()
        )
        raise CliError(f"invalid settings: {details}") from err


async def submit_command(args: argparse.Namespace) -> int:
    from videoq.temporal import connect, new_job, start_job
    from videoq.waiting import follow_jobs

    request = job_request_from_args(args)
    settings = load_settings()
    client = await _connect(settings, connect)
    job = new_job(request)
    await start_job(client, settings, job)
    print(f"submitted {job.id} ({job.job_type.value}, {job.engine.value}, {job.priority.value})")
    if not args.wait:
        return 0
    states = await follow_jobs(client, [job.id], print)
    return 0 if states[job.id].phase is JobStatus.COMPLETED else 1


async def _connect(settings: Settings, connect):
    try:
        return await asyncio.wait_for(connect(settings), 10)
    except (RuntimeError, TimeoutError, OSError) as err:
        raise CliError(
            f"cannot reach Temporal at {settings.effective_temporal_address}: {err}; "
            "start it with `videoq dev` or set VIDEOQ_TEMPORAL_ADDRESS"
        ) from err


async def worker_command(args: argparse.Namespace) -> int:
    import worker

    await worker.main(load_settings())
    return 0


def _stack_from_args(args: argparse.Namespace, settings: Settings) -> DevStack:
    return DevStack(
        data_dir=Path(args.data_dir).resolve(),
        temporal_port=args.temporal_port,
        ui_port=args.ui_port,
        temporal_address=settings.temporal_address,
        database_url=settings.database_url,
        api_port=args.api_port,
        fairness=settings.fairness == "user",
    )


def dev_jwt_secret(settings: Settings, data_dir: Path) -> str:
    """Return VIDEOQ_JWT_SECRET, or a secret generated once and kept in ``data_dir``."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret, encoding="utf-8")
    return secret


async def dev_command(args: argparse.Namespace) -> int:
    from api.auth import issue_token

    settings = load_settings()
    stack = _stack_from_args(args, settings)
    secret = dev_jwt_secret(settings, stack.data_dir)
    os.environ["VIDEOQ_JWT_SECRET"] = secret
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        stack.start_temporal()
        stack.start_postgres()
        await migrate(stack.database_url)
        stack.start_worker()
        stack.start_api()
        print(f"Temporal:        {stack.address}")
        if stack.ui_url:
            print(f"Temporal Web UI: {stack.ui_url}")
        print(f"PostgreSQL:      {describe_target(stack.database_url)}")
        print(f"API:             {stack.api_url} (docs at {stack.api_url}/docs)")
        print(f"Videos:          {settings.output_dir.resolve()}")
        user_token = issue_token(secret, DEV_USER, ttl_seconds=DEV_TOKEN_TTL)
        admin_token = issue_token(secret, DEV_ADMIN, admin=True, ttl_seconds=DEV_TOKEN_TTL)
        print(f"User token:      {user_token}")
        print(f"Admin token:     {admin_token}")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.is_set():
            stack.check_children()
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


async def migrate_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.database_url:
        raise CliError("VIDEOQ_DATABASE_URL is not set")
    try:
        applied = await migrate(settings.database_url)
    except ProjectionUnavailable as err:
        raise CliError(str(err)) from err
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none, schema is current'}")
    return 0


async def setup_command(args: argparse.Namespace) -> int:
    from videoq import search_attributes
    from videoq.temporal import connect

    settings = load_settings()
    client = await _connect(settings, connect)
    added = await search_attributes.register(client, settings.temporal_namespace)
    names = ", ".join(key.name for key in search_attributes.ALL_KEYS)
    if added:
        print(f"registered search attributes {', '.join(added)} in {settings.temporal_namespace}")
    else:
        print(f"search attributes already registered: {names}")
    return 0


def api_command(args: argparse.Namespace) -> None:
    """Serve the API with uvicorn; blocks until SIGINT or SIGTERM."""
    import uvicorn

    from api.app import create_app

    settings = load_settings()
    if settings.jwt_secret is None:
        raise CliError("VIDEOQ_JWT_SECRET is not set; the API cannot check tokens without it")
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
    )


DEMO_JOBS = [
    (
        JobType.DOUBT,
        Engine.MANIM,
        "Why does ice float on water?",
        "Water expands as it freezes, so ice is less dense than the liquid around it.",
        [
            "Molecules lock into a hexagonal lattice",
            "The lattice holds more empty space",
            "Less dense solids float",
        ],
    ),
    (
        JobType.TOPIC_SHORT,
        Engine.STANDARD,
        "Photosynthesis in one minute",
        "Plants turn light, water and carbon dioxide into sugar and oxygen.",
        ["Light reactions split water", "The Calvin cycle fixes carbon"],
    ),
    (
        JobType.DAILY_CA,
        Engine.STANDARD,
        "Today's current affairs",
        "Three headlines from today's news, each in one slide.",
        ["A new solar park opens", "Monsoon forecast updated", "Chess olympiad results"],
    ),
]


async def demo_command(args: argparse.Namespace) -> int:
    from videoq.temporal import connect, new_job, start_job
    from videoq.waiting import follow_jobs

    settings = load_settings()
    data_dir = Path(args.data_dir).resolve()
    stack = DevStack(
        data_dir=data_dir,
        temporal_port=free_port(),
        ui_port=free_port(),
        temporal_address=settings.temporal_address,
    )
    started = time.monotonic()
    try:
        stack.start_temporal()
        os.environ["VIDEOQ_TEMPORAL_ADDRESS"] = stack.address
        settings = load_settings()
        stack.start_worker(log=data_dir / "worker.log")
        print(f"Temporal dev server at {stack.address}, Web UI {stack.ui_url or '(external)'}")
        client = await _connect(settings, connect)
        ids = []
        for job_type, engine, title, text, steps in DEMO_JOBS:
            request = JobRequest(
                job_type=job_type,
                engine=engine,
                user_id="demo-student",
                content={"title": title, "text": text, "steps": steps},
            )
            job = new_job(request)
            await start_job(client, settings, job)
            ids.append(job.id)
            print(f"submitted {job.id}: {job_type.value} ({job.priority.value}), {engine.value}")
        states = await follow_jobs(client, ids, print)
    finally:
        stack.stop()

    failed = [state for state in states.values() if state.phase is not JobStatus.COMPLETED]
    print(
        f"\n{len(states) - len(failed)} of {len(states)} videos in "
        f"{time.monotonic() - started:.1f} s:"
    )
    for state in states.values():
        print(
            f"  {state.job_type.value:12} {state.engine.value:8} {state.output or state.last_error}"
        )
    missing = [s for s in states.values() if s.output and not Path(s.output).is_file()]
    return 1 if failed or missing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the embedded stack: Temporal dev server and worker")
    dev.add_argument("--temporal-port", type=int, default=7233, help="Temporal gRPC port")
    dev.add_argument("--ui-port", type=int, default=8233, help="Temporal Web UI port")
    dev.add_argument("--api-port", type=int, default=8000, help="HTTP port of the API")
    dev.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="folder for server data")

    commands.add_parser("migrate", help="apply the projection's SQL migrations")
    commands.add_parser(
        "setup", help="register the search attributes on an existing Temporal cluster"
    )

    api = commands.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", help="address to listen on (default VIDEOQ_API_HOST)")
    api.add_argument("--port", type=int, help="port to listen on (default VIDEOQ_API_PORT)")

    commands.add_parser("worker", help="run a worker process against VIDEOQ_TEMPORAL_ADDRESS")

    submit = commands.add_parser("submit", help="submit a job")
    submit.add_argument("--file", help="JSON file with job_type, engine, content (and user_id)")
    submit.add_argument("--type", choices=[t.value for t in JobType], default=JobType.DOUBT.value)
    submit.add_argument(
        "--engine", choices=[e.value for e in Engine], default=Engine.STANDARD.value
    )
    submit.add_argument("--user", default="cli-user", help="user id the job belongs to")
    submit.add_argument("--title")
    submit.add_argument("--text")
    submit.add_argument("--step", action="append", help="one step; repeat for more")
    submit.add_argument("--wait", action="store_true", help="follow the job until it ends")

    demo = commands.add_parser("demo", help="start a stack, render one job of each type, stop")
    demo.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR / "demo"))
    return parser


COMMANDS = {
    "dev": dev_command,
    "worker": worker_command,
    "submit": submit_command,
    "demo": demo_command,
    "migrate": migrate_command,
    "setup": setup_command,
}


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    configure_logging(os.environ.get("VIDEOQ_LOG_LEVEL", "WARNING"))
    if args.command == "api":
        try:
            api_command(args)
        except CliError as err:
            sys.stderr.write(f"videoq: {err}\n")
            os._exit(2)
        return
    run_async(COMMANDS[args.command](args))


if __name__ == "__main__":
    main()
