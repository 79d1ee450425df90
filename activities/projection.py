"""The projection activity: writes a job's state into the Postgres ``video_jobs`` table."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from videoq.db import ProjectionUnavailable
from videoq.projection import JobSnapshot, record_snapshot


class ProjectionActivities:
    """Runs as a local activity of the workflow worker, so render slots never delay it."""

    def __init__(self, pool: AsyncConnectionPool | None) -> None:
        self._pool = pool

    @activity.defn(name="record_job_state")
    async def record_job_state(self, snapshot: JobSnapshot) -> bool:
        """Upsert one snapshot; return whether it was newer than the stored row.

        Raises:
            ApplicationError: retryable, when the database cannot be reached; the workflow's
                local-activity retry policy tries again until it can.
        """
        if self._pool is None:
            return False  # this worker runs without a projection (no VIDEOQ_DATABASE_URL)
        try:
            applied = await record_snapshot(self._pool, snapshot)
        except ProjectionUnavailable as err:
            raise ApplicationError(
                f"job {snapshot.id}: projection write seq {snapshot.seq} failed: {err}",
                type="ProjectionUnavailable",
            ) from err
        activity.logger.debug(
            "projection %s: job %s %s seq %d",
            "written" if applied else "skipped as stale",
            snapshot.id,
            snapshot.status.value,
            snapshot.seq,
            extra={"action": "projection_written", "job_id": snapshot.id},
        )
        return applied
