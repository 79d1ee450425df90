-- The projection of video jobs: one row per job id, written from workflow state so the API can
-- list jobs and compute queue positions without querying Temporal.

CREATE TABLE video_jobs (
    id text PRIMARY KEY,
    user_id text NOT NULL,
    job_type text NOT NULL CHECK (job_type IN ('doubt', 'topic_short', 'daily_ca')),
    engine text NOT NULL CHECK (engine IN ('manim', 'standard')),
    priority text NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
    -- Temporal priority key, smaller first; 1 to 5 is the server's default range.
    priority_key smallint NOT NULL CHECK (priority_key BETWEEN 1 AND 5),
    status text NOT NULL CHECK (
        status IN ('queued', 'rendering', 'retrying', 'completed', 'failed', 'cancelled')
    ),
    attempt integer NOT NULL CHECK (attempt >= 0),
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    enqueued_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    error text,
    output text,
    worker text,
    title text NOT NULL,
    -- 1 for the first run, plus 1 each time an admin retries the job under the same id.
    generation integer NOT NULL CHECK (generation >= 1),
    -- Write sequence within a generation; a write is applied only if (generation, seq) grows.
    seq bigint NOT NULL CHECK (seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Queue positions count queued jobs of one engine ahead of a job in dispatch order.
CREATE INDEX video_jobs_queued_order_idx
    ON video_jobs (engine, priority_key, enqueued_at, id)
    WHERE status = 'queued';

-- Listing a user's jobs, and every job for admins, newest first.
CREATE INDEX video_jobs_user_enqueued_idx ON video_jobs (user_id, enqueued_at DESC, id DESC);
CREATE INDEX video_jobs_enqueued_idx ON video_jobs (enqueued_at DESC, id DESC);

-- Render durations of the latest completed jobs of an engine, for ETA estimates.
CREATE INDEX video_jobs_completed_idx
    ON video_jobs (engine, finished_at DESC)
    WHERE status = 'completed';
