"""The job model: priorities by job type and validation messages that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from videoq.jobs import PRIORITY_KEYS, JobRequest, JobType, Priority
from videoq.temporal import new_job

VALID = {
    "job_type": "doubt",
    "engine": "manim",
    "user_id": "student-1",
    "content": {"title": "Ohm's law", "text": "V = I R", "steps": ["Measure V", "Measure I"]},
}


@pytest.mark.parametrize(
    ("job_type", "priority", "key"),
    [
        ("doubt", Priority.HIGH, 1),
        ("topic_short", Priority.MEDIUM, 3),
        ("daily_ca", Priority.LOW, 5),
    ],
)
def test_job_priority_follows_job_type(job_type, priority, key):
    job = new_job(JobRequest.model_validate({**VALID, "job_type": job_type}))
    assert job.priority is priority
    assert job.priority_key == key


def test_priority_keys_order_high_first():
    assert (
        PRIORITY_KEYS[Priority.HIGH] < PRIORITY_KEYS[Priority.MEDIUM] < PRIORITY_KEYS[Priority.LOW]
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"job_type": "lecture"}, "job_type"),
        ({"engine": "blender"}, "engine"),
        ({"user_id": ""}, "user_id"),
        ({"content": {"text": "no title"}}, "content.title"),
        ({"content": {"title": "t" * 121, "text": "x"}}, "content.title"),
        ({"content": {"title": "t", "text": "x" * 2001}}, "content.text"),
        ({"content": {"title": "t", "text": "x", "steps": ["s"] * 13}}, "content.steps"),
        ({"content": {"title": "t", "text": "x", "steps": [" "]}}, "content.steps"),
        ({"content": {"title": "t", "text": "x", "code": "import os"}}, "content.code"),
    ],
    ids=[
        "type",
        "engine",
        "user",
        "no-title",
        "long-title",
        "long-text",
        "many-steps",
        "blank-step",
        "unknown-field",
    ],
)
def test_job_request_rejects_invalid_field(change, field):
    with pytest.raises(ValidationError) as error:
        JobRequest.model_validate({**VALID, **change})
    locations = [".".join(str(part) for part in detail["loc"]) for detail in error.value.errors()]
    assert field in locations


def test_new_job_ids_are_unique():
    request = JobRequest.model_validate(VALID)
    assert new_job(request).id != new_job(request).id
    assert new_job(request).job_type is JobType.DOUBT
