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
from typing import Any, TypeVar, get_args

from pydantic import ValidationError

from api.auth import AuthSettings, issue_token
from videoq.api_client import ApiError, JobsApi, describe_view
from videoq.db import ProjectionUnavailable, describe_target, migrate
from videoq.devstack import DevStack, StackError, free_port
from videoq.jobs import Engine, JobRequest, JobStatus, JobType
from videoq.logs import configure_logging
from videoq.settings import Settings, WorkerRole

SettingsT = TypeVar("SettingsT", Settings, AuthSettings)

DEFAULT_DATA_DIR = Path(".videoq")
DEV_USER = "student-1"
DEV_ADMIN = "admin-1"
DEV_TOKEN_TTL = 7 * 24 * 3600
DEFAULT_API_URL = "http://127.0.0.1:8000"
CLI_USER_PLACEHOLDER = "from-token"


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
        # The API takes the user from the token; the model still validates a user id.
        data["user_id"] = CLI_USER_PLACEHOLDER
    else:
        missing = [
            flag for flag, value in (("--title", args.title), ("--text", args.text)) if not value
        ]
        if missing:
            raise CliError(f"missing {' and '.join(missing)} (or pass --file JOB.json)")
        data = {
            "job_type": args.type,
            "engine": args.engine,
            "user_id": CLI_USER_PLACEHOLDER,
            "content": {"title": args.title, "text": args.text, "steps": args.step or []},
        }
    try:
        return JobRequest.model_validate(data)
    except ValidationError as err:
        raise CliError(_validation_message(err)) from err


def load_settings() -> Settings:
    return _read_settings(Settings, "settings")


def load_auth_settings() -> AuthSettings:
    """Read the API's token settings; ``api.auth`` owns VIDEOQ_JWT_SECRET."""
    return _read_settings(AuthSettings, "API settings")


def _read_settings(model: type[SettingsT], what: str) -> SettingsT:
    try:
        return model()
    except ValidationError as err:
        details = "; ".join(
            f"VIDEOQ_{'_'.join(str(p) for p in d['loc']).upper() or 'SETTINGS'}: {d['msg']}"
            for d in err.errors()
        )
        raise CliError(f"invalid {what}: {details}") from err


async def submit_command(args: argparse.Namespace) -> int:
    request = job_request_from_args(args)
    token = args.token or os.environ.get("VIDEOQ_API_TOKEN")
    if not token:
        raise CliError(
            "missing API token: pass --token or set VIDEOQ_API_TOKEN (videoq dev prints one)"
        )
    api = JobsApi(args.api_url or os.environ.get("VIDEOQ_API_URL", DEFAULT_API_URL), token)
    try:
        submitted = await api.submit(request, idempotency_key=args.idempotency_key)
        print(
            f"submitted {submitted['id']} ({request.job_type.value}, {request.engine.value}, "
            f"{submitted['priority']}): {describe_view(submitted)}"
        )
        if not args.wait:
            return 0
        views = await api.follow([submitted["id"]], print)
    except ApiError as err:
        raise CliError(str(err)) from err
    finally:
        await api.close()
    return 0 if views[submitted["id"]]["status"] == JobStatus.COMPLETED.value else 1


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

    settings = load_settings()
    if args.role is not None:
        settings = settings.model_copy(update={"worker_role": args.role})
    await worker.main(settings)
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


def dev_jwt_secret(data_dir: Path) -> str:
    """Return VIDEOQ_JWT_SECRET, or a secret generated once and kept in ``data_dir``."""
    if os.environ.get("VIDEOQ_JWT_SECRET"):
        return load_auth_settings().jwt_secret.get_secret_value()
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret, encoding="utf-8")
    return secret


async def dev_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    stack = _stack_from_args(args, settings)
    secret = dev_jwt_secret(stack.data_dir)
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
        if settings.database_url:
            print(f"PostgreSQL:      {describe_target(stack.database_url)}")
        else:
            # The embedded cluster trusts local connections, so its URL carries no secret.
            print(f"PostgreSQL:      {stack.database_url}")
        print(f"API:             {stack.api_url} (docs at {stack.api_url}/docs)")
        print(f"Admin dashboard: {stack.api_url}/admin")
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
    auth_settings = load_auth_settings()
    uvicorn.run(
        create_app(settings, auth_settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level=settings.log_level.lower(),
    )


DEMO_JOBS = [
    (JobType.DAILY_CA, Engine.STANDARD, "Yesterday's current affairs",
     "Two headlines from yesterday's news, each in one slide.",
     ["Parliament passes the budget", "A new metro line opens"]),
    (JobType.DAILY_CA, Engine.STANDARD, "Today's current affairs",
     "Three headlines from today's news, each in one slide.",
     ["A new solar park opens", "Monsoon forecast updated", "Chess olympiad results"]),
    (JobType.DAILY_CA, Engine.STANDARD, "This week in science",
     "Two discoveries of the week, explained in a minute.",
     ["A comet returns after 80 years", "A new antibiotic class"]),
    (JobType.TOPIC_SHORT, Engine.STANDARD, "Photosynthesis in one minute",
     "Plants turn light, water and carbon dioxide into sugar and oxygen.",
     ["Light reactions split water", "The Calvin cycle fixes carbon"]),
    (JobType.DOUBT, Engine.STANDARD, "What is a prime number?",
     "A prime has exactly two divisors: 1 and itself.",
     ["2 is the only even prime", "1 is not prime"]),
    (JobType.DOUBT, Engine.MANIM, "Why does ice float on water?",
     "Water expands as it freezes, so ice is less dense than the liquid around it.",
     ["Molecules lock into a hexagonal lattice", "The lattice holds more empty space",
      "Less dense solids float"]),
]  # fmt: skip
# The demo's worker renders two jobs at a time, so the later, higher-priority jobs overtake
# the daily_ca jobs submitted before them.
DEMO_WORKER_ENV = {"VIDEOQ_MAX_RENDERS": "2", "VIDEOQ_MAX_MANIM_RENDERS": "1"}


async def demo_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    data_dir = Path(args.data_dir).resolve()
    secret = dev_jwt_secret(data_dir)
    os.environ["VIDEOQ_JWT_SECRET"] = secret
    stack = DevStack(
        data_dir=data_dir,
        temporal_port=free_port(),
        ui_port=free_port(),
        api_port=free_port(),
        temporal_address=settings.temporal_address,
        database_url=settings.database_url,
    )
    started = time.monotonic()
    api = None
    try:
        stack.start_temporal()
        stack.start_postgres()
        await migrate(stack.database_url)
        stack.start_worker(log=data_dir / "worker.log", env=DEMO_WORKER_ENV)
        # The API reads the same limits, so that its start estimates match the worker.
        stack.start_api(log=data_dir / "api.log", env=DEMO_WORKER_ENV)
        print(f"Temporal Web UI {stack.ui_url or '(external server)'}, API {stack.api_url}/docs")
        print("Worker: at most 2 renders at once, 1 of them Manim\n")
        api = JobsApi(stack.api_url, issue_token(secret, "demo-student", ttl_seconds=3600))
        ids = []
        for job_type, engine, title, text, steps in DEMO_JOBS:
            request = JobRequest(
                job_type=job_type,
                engine=engine,
                user_id=CLI_USER_PLACEHOLDER,
                content={"title": title, "text": text, "steps": steps},
            )
            submitted = await api.submit(request)
            ids.append(submitted["id"])
            print(
                f"submitted {submitted['id']}: {job_type.value} ({submitted['priority']}), "
                f"{engine.value}"
            )
        print()
        views = await api.follow(ids, print)
    except ApiError as err:
        raise CliError(str(err)) from err
    finally:
        if api is not None:
            await api.close()
        stack.stop()

    print(f"\n{len(views)} jobs in {time.monotonic() - started:.1f} s:")
    missing = []
    for view in views.values():
        output = view.get("output")
        if view["status"] != JobStatus.COMPLETED.value or not output or not Path(output).is_file():
            missing.append(view["id"])
        print(
            f"  {view['job_type']:12} {view['engine']:8} {view['status']:10} "
            f"{output or view.get('error')}"
        )
    print(f"\nLogs and data: {data_dir}")
    return 1 if missing else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoq", description=__doc__)
    defaults = argparse.ArgumentDefaultsHelpFormatter
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser(
        "dev",
        help="run the embedded stack: Temporal dev server, PostgreSQL, worker and API",
        formatter_class=defaults,
    )
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

    worker = commands.add_parser(
        "worker", help="run a worker process against VIDEOQ_TEMPORAL_ADDRESS"
    )
    worker.add_argument(
        "--role",
        choices=get_args(WorkerRole),
        help="poll job workflows, render task queues, or both (default: VIDEOQ_WORKER_ROLE, "
        "else all)",
    )

    submit = commands.add_parser("submit", help="submit a job")
    submit.add_argument(
        "--file", help="JSON file with job_type, engine and content (the user comes from the token)"
    )
    submit.add_argument("--type", choices=[t.value for t in JobType], default=JobType.DOUBT.value)
    submit.add_argument(
        "--engine", choices=[e.value for e in Engine], default=Engine.STANDARD.value
    )
    submit.add_argument("--title")
    submit.add_argument("--text")
    submit.add_argument("--step", action="append", help="one step; repeat for more")
    submit.add_argument("--wait", action="store_true", help="follow the job until it ends")
    submit.add_argument("--token", help="API bearer token (default: VIDEOQ_API_TOKEN)")
    submit.add_argument(
        "--api-url", help=f"API base URL (default: VIDEOQ_API_URL or {DEFAULT_API_URL})"
    )
    submit.add_argument("--idempotency-key", help="repeat a submit safely: same key, same job")

    demo = commands.add_parser(
        "demo", help="start a stack, render jobs of every type, stop", formatter_class=defaults
    )
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
