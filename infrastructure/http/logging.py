"""Structured JSON logs, one object per line, each carrying the id of the request it belongs to.

The request id lives in a context variable: the observation middleware sets it for the request's
task, and the threadpool that runs the (sync) routes copies the context, so every line logged
while serving a request names it, whichever thread writes it.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("creditledger_request_id", default=None)
"""The id of the request being served, if any."""

FIELDS = "fields"
"""Pass structured fields to a log call as ``extra={"fields": {...}}``."""


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, request id, fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    """Send every logger's records (uvicorn's included) to stderr as JSON lines.

    Called by ``creditledger serve`` only: building the app never touches global logging, so
    tests and embedding programs keep their own configuration.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn's own loggers would otherwise print plain text through their own handlers.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
