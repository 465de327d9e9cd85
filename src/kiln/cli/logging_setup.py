"""Log lines in Kaniko's shape (`INFO[0003] message`), so existing CI log parsing keeps working.

Why its own module: the format and the verbosity names (`panic` .. `trace`) are part of Kaniko's
drop-in surface; the rest of kiln just uses the standard `logging` module under the name "kiln".
"""

from __future__ import annotations

import logging
import sys
import time

_LEVELS = {
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}
_NAMES = {
    logging.CRITICAL: "FATA",
    logging.ERROR: "ERRO",
    logging.WARNING: "WARN",
    logging.INFO: "INFO",
    logging.DEBUG: "DEBU",
}


class KanikoFormatter(logging.Formatter):
    """`LEVEL[SSSS] message`, seconds since the build started."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.monotonic()

    def format(self, record: logging.LogRecord) -> str:
        elapsed = int(time.monotonic() - self.start)
        name = _NAMES.get(record.levelno, record.levelname[:4])
        return f"{name}[{elapsed:04d}] {record.getMessage()}"


def setup_logging(verbosity: str) -> None:
    """Send kiln's log to stderr at the given Kaniko-style verbosity."""
    logger = logging.getLogger("kiln")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KanikoFormatter())
    logger.addHandler(handler)
    logger.setLevel(_LEVELS[verbosity])
    logger.propagate = False
