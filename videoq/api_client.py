"""A small client of the jobs API, for ``videoq submit`` and ``videoq demo``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from videoq.jobs import JobRequest, JobStatus

POLL_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 15.0


class ApiError(Exception):
    """The API rejected a request or could not be reached; the message names request and cause."""


class JobsApi:
    def __init__(self, base_url: str, token: str) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise ApiError(f"cannot reach the API at {self._http.base_url}: {err}") from err
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(f"{method} {path} failed with {response.status_code}: {detail}")
        return response.json()

    async def submit(self, request: JobRequest, idempotency_key: str | None = None) -> dict:
        body = request.model_dump(mode="json", exclude={"user_id"})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._request("POST", "/v1/jobs", json=body, headers=headers)

    async def job(self, job_id: str) -> dict:
        return await self._request("GET", f"/v1/jobs/{job_id}")

    async def follow(self, job_ids: list[str], report: Callable[[str], None]) -> dict[str, dict]:
        """Poll each job until all have ended, reporting each change of position or phase."""
        last: dict[str, str] = {}
        views: dict[str, dict] = {}
        while len(views) < len(job_ids) or not all(_is_final(view) for view in views.values()):
            for job_id in job_ids:
                if job_id in views and _is_final(views[job_id]):
                    continue
                view = views[job_id] = await self.job(job_id)
                line = describe_view(view)
                if last.get(job_id) != line:
                    report(f"{job_id}: {line}")
                    last[job_id] = line
            await asyncio.sleep(POLL_SECONDS)
        return views


def _is_final(view: dict) -> bool:
    return JobStatus(view["status"]).is_final


def describe_view(view: dict) -> str:
    status = JobStatus(view["status"])
    if status is JobStatus.QUEUED:
        if view.get("position") is None:
            return "queued"
        line = f"queued, position {view['position']} ({view['jobs_ahead']} ahead)"
        if view.get("estimated_start_seconds") is not None:
            line += f", starts in about {view['estimated_start_seconds']:.0f} s"
        return line
    if status is JobStatus.RENDERING:
        return f"rendering attempt {view['attempt']} of {view['max_attempts']}"
    if status is JobStatus.RETRYING:
        return f"retrying after attempt {view['attempt']}: {view['error']}"
    if status is JobStatus.COMPLETED:
        return f"completed: {view['output']}"
    return f"{status.value}: {view['error']}"
