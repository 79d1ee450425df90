"""Log setup: one line per record, with the ``action`` and ``job_id`` keys operators filter on."""

from __future__ import annotations

import logging


class _ActionFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        keys = [
            f"{key}={getattr(record, key)}" for key in ("action", "job_id") if hasattr(record, key)
        ]
        return f"{line} [{' '.join(keys)}]" if keys else line


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_ActionFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
