"""Job ids derived from idempotency keys, so that a repeated submission names the same job."""

from __future__ import annotations

import uuid

MAX_KEY_CHARS = 200

# Fixed namespace of the uuid5 ids; changing it would give every key a new job id.
JOB_ID_NAMESPACE = uuid.UUID("4f1c7a52-3e0b-5d2a-9c61-8b7f0e2d9a13")


def job_id_for_key(user_id: str, key: str) -> str:
    """Return the job id of ``key`` for ``user_id``: ``job-`` and a uuid5 of both.

    The same user and key always give the same id, and two users who pick the same key get
    different ids. A newline separates the two parts because user ids cannot contain one.

    Raises:
        ValueError: ``key`` is empty or longer than MAX_KEY_CHARS characters.
    """
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise ValueError(
            f"an idempotency key must have 1 to {MAX_KEY_CHARS} characters, has {len(key)}"
        )
    name = user_id + "\n" + key
    return f"job-{uuid.uuid5(JOB_ID_NAMESPACE, name)}"
