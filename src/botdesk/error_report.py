"""The report of an unexpected error: a short reference, one redacted line, details in a log.

The CLI prints the line on stderr; the desktop console shows it in its window. Both write the
redacted traceback to ``<home>/logs/botdesk-errors.log`` under the same reference, so an
operator can hand the reference to whoever reads the log.
"""

from __future__ import annotations

import datetime
import secrets
import traceback
from dataclasses import dataclass
from pathlib import Path

ERROR_LOG = "botdesk-errors.log"


@dataclass(frozen=True)
class ErrorReport:
    ref: str
    short: str  # "ExcType: message", redacted and cut to 300 characters
    where: str  # the log file's path, or "stderr" when it could not be written
    details: str  # the redacted traceback (written to the log, or left for stderr)

    def line(self) -> str:
        return f"unexpected error (ref {self.ref}): {self.short}; details in {self.where}"


def record_unexpected(exc: BaseException, logdir: Path) -> ErrorReport:
    """Write the redacted traceback under a fresh reference; never raises."""
    ref = secrets.token_hex(4)
    text = "".join(traceback.format_exception(exc))
    try:
        from botdesk.log import REDACTOR

        text = REDACTOR.redact(text)
        short = REDACTOR.redact(f"{type(exc).__name__}: {exc}")
    except Exception:  # the redactor itself must never hide the original failure
        short = type(exc).__name__
    where = "stderr"
    try:
        logdir.mkdir(parents=True, exist_ok=True)
        log = logdir / ERROR_LOG
        with log.open("a", encoding="utf-8") as fh:
            fh.write(
                f"--- ref {ref} at {datetime.datetime.now(datetime.UTC).isoformat()}\n{text}\n"
            )
        where = str(log)
    except OSError:
        pass
    return ErrorReport(ref=ref, short=short[:300], where=where, details=text)
