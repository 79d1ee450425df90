-- Indexes of the admin statistics, so that their figures of the last hour read only that hour's
-- rows. A migration runs in a transaction and so cannot build indexes CONCURRENTLY: each CREATE
-- INDEX blocks writes to video_jobs while it runs.
-- Throughput and render times need none: they scan video_jobs_completed_idx of migration 0001.

-- Counts of queued, rendering and retrying jobs, and the oldest queued job, as index-only scans.
-- Few jobs are active at once, so this index stays small however many finished jobs the table
-- keeps. Its key starts with enqueued_at, not status or engine, so that queue positions keep
-- using video_jobs_queued_order_idx: with a key on status the planner chose this index for them
-- on a nearly empty table.
CREATE INDEX video_jobs_active_idx
    ON video_jobs (enqueued_at, id) INCLUDE (engine, priority, status)
    WHERE status IN ('queued', 'rendering', 'retrying');

-- Wait times of the jobs that started in the last hour.
CREATE INDEX video_jobs_started_idx ON video_jobs (started_at) WHERE started_at IS NOT NULL;

-- Failures, timeouts and retries of the jobs changed in the last hour.
CREATE INDEX video_jobs_updated_idx ON video_jobs (updated_at);
