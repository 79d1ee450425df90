"""Custom search attributes that make every job findable in the Temporal Web UI."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

JOB_TYPE = SearchAttributeKey.for_keyword("VideoqJobType")
PRIORITY = SearchAttributeKey.for_keyword("VideoqPriority")
ENGINE = SearchAttributeKey.for_keyword("VideoqEngine")
USER_ID = SearchAttributeKey.for_keyword("VideoqUserId")
STATUS = SearchAttributeKey.for_keyword("VideoqStatus")

ALL_KEYS = (JOB_TYPE, PRIORITY, ENGINE, USER_ID, STATUS)


def dev_server_args() -> list[str]:
    """``--search-attribute`` flags that register every key on a Temporal dev server."""
    args = []
    for key in ALL_KEYS:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


async def register(client: Client, namespace: str) -> list[str]:
    """Add the keys the namespace lacks and return their names; registered keys are kept."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = [key for key in ALL_KEYS if key.name not in existing.custom_attributes]
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in missing
                },
            )
        )
    return [key.name for key in missing]
