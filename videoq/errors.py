"""Application error types that cross the workflow and activity boundary."""

# The content cannot be rendered; retrying would fail the same way, so it is non-retryable.
INVALID_CONTENT = "InvalidContent"
# One render attempt failed (renderer exit code, missing output); the retry policy applies.
RENDER_FAILED = "RenderFailed"
# Every attempt is used up; the job and its workflow end failed.
JOB_FAILED = "JobFailed"
