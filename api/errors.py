"""Error details of the API and the handlers that turn exceptions into 4xx and 503 responses.

Details are short fixed strings, so that clients and tests can compare them exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from videoq.db import ProjectionUnavailable

logger = logging.getLogger("videoq.api")

JOB_NOT_FOUND = "job not found"
JOB_NOT_COMPLETED = "job is not completed"
VIDEO_FILE_NOT_FOUND = "video file not found"
JOB_NOT_RETRYABLE = "only failed or cancelled jobs can be retried"
JOB_ALREADY_RUNNING = "job is already running"
JOB_HISTORY_GONE = "job cannot be retried: its workflow history no longer exists"
ADMIN_ONLY_RETRY = "only admins can retry jobs"
ADMIN_ONLY_USER_FILTER = "only admins can list the jobs of other users"
JSON_CONTENT_TYPE_REQUIRED = "request body must be JSON, sent with Content-Type: application/json"
TEMPORAL_UNAVAILABLE = "temporal unavailable"
DATABASE_UNAVAILABLE = "database unavailable"

# Locations that FastAPI puts first in a validation error. Clients need the field path after
# them.
_REQUEST_PARTS = {"body", "query", "path", "header", "cookie"}


class TemporalUnavailable(Exception):
    """The Temporal server cannot be reached, or it failed a call the request needs."""


def job_already_final(status_value: str) -> str:
    return f"job is already {status_value}"


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Turn pydantic's error list into one line: ``field.path: message`` joined by ``; ``.

    Malformed JSON and a missing body get a sentence of their own instead of a field path.
    """
    problems = []
    for error in errors:
        kind = error.get("type")
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in _REQUEST_PARTS:
            part, location = location[0], location[1:]
        else:
            part = ""
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")

        if kind == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            problems.append(f"request body is not valid JSON: {reason}")
        elif kind == "missing" and part == "body" and not location:
            problems.append("request body is missing")
        elif kind == "model_attributes_type" and part == "body" and not location:
            problems.append("request body must be a JSON object")
        else:
            field = ".".join(location) or part or "request"
            problems.append(f"{field}: {message}")
    return "; ".join(problems) or "invalid request"


async def handle_validation_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    if _body_rejected(err.errors()) and not _is_json(request.headers.get("content-type")):
        # FastAPI reads a body of another media type as raw bytes and then reports it as
        # "not a valid dictionary", which would hide the actual mistake.
        return JSONResponse(
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            content={"detail": JSON_CONTENT_TYPE_REQUIRED},
        )
    detail = describe_validation_errors(err.errors())
    logger.info(
        "rejected %s %s: %s",
        request.method,
        request.url.path,
        detail,
        extra={"action": "request_invalid"},
    )
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail}
    )


async def handle_projection_unavailable(request: Request, err: Exception) -> JSONResponse:
    logger.warning(
        "%s %s: %s", request.method, request.url.path, err, extra={"action": "database_unavailable"}
    )
    return _unavailable(DATABASE_UNAVAILABLE)


async def handle_temporal_unavailable(request: Request, err: Exception) -> JSONResponse:
    logger.warning(
        "%s %s: %s", request.method, request.url.path, err, extra={"action": "temporal_unavailable"}
    )
    return _unavailable(TEMPORAL_UNAVAILABLE)


async def handle_temporal_rpc_error(request: Request, err: Exception) -> JSONResponse:
    """Respond with 503 to a Temporal call that failed in a way the route did not expect."""
    assert isinstance(err, RPCError)
    logger.error(
        "%s %s: Temporal call failed with %s: %s",
        request.method,
        request.url.path,
        err.status.name,
        err.message,
        extra={"action": "temporal_unavailable"},
    )
    return _unavailable(TEMPORAL_UNAVAILABLE)


def _body_rejected(errors: Sequence[Any]) -> bool:
    return any(tuple(error.get("loc", ())) == ("body",) for error in errors)


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


EXCEPTION_HANDLERS = {
    RequestValidationError: handle_validation_error,
    ProjectionUnavailable: handle_projection_unavailable,
    TemporalUnavailable: handle_temporal_unavailable,
    RPCError: handle_temporal_rpc_error,
}


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content={"detail": detail})
