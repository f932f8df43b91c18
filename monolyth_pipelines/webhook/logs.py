"""The receiver's access log without query strings.

uvicorn's access log line is ``client - "METHOD /path?query HTTP/1.1" status``; a Pub/Sub push
endpoint configured with ``?token=SECRET`` would write the secret with every push. A filter on
uvicorn's access logger cuts the query off every path argument before the line is formatted,
whichever way uvicorn was started (``webhook serve`` or ``uvicorn --factory``).
"""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


def _without_query(value: object) -> object:
    if isinstance(value, str) and value.startswith("/") and "?" in value:
        return value.partition("?")[0]
    return value


class RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(a) for a in record.args)
        record.msg = _without_query(record.msg)
        return True


def redact_access_log() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
