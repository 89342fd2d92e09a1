"""Logging setup: structlog and stdlib logging through one redacting processor chain.

Owns ``configure_logging`` and ``get_logger``. Redaction happens at three points so a
secret cannot leave by a side door:

1. structlog events are redacted (exception text included) before they are handed to
   stdlib logging, so every handler, not only ours, receives clean event dicts;
2. every stdlib ``LogRecord`` (aiohttp, aiogram, httpx, asyncio...) has its message,
   traceback text and stack text redacted when it is created, through a log record
   factory, for the same reason;
3. our handler's formatter redacts the final rendered line (console or JSON), which
   catches whatever a renderer's ``repr()`` of an object might reveal.

The rules themselves live in ``botdesk.redact``; register secret values with
``REDACTOR.add`` (the secret store does it for the lead when given ``register=``).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal, TextIO

from botdesk.errors import ConfigError
from botdesk.redact import REDACTOR, Redactor, format_exception_redacted

# structlog.dev (imported by ``import structlog``) imports rich's traceback module and
# pygments, when installed, only for its default exception formatter. botdesk renders
# exceptions itself (``_plain``), so rich is hidden for that one import: about 20-40 ms and
# a few MB off every CLI command. rich stays importable afterwards (the CLI prints with it).
_hide_rich = "rich" not in sys.modules
if _hide_rich:
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError
try:
    import structlog
finally:
    if _hide_rich:
        del sys.modules["rich"]

__all__ = [
    "REDACTOR",
    "THIRD_PARTY_LOGGERS",
    "Redactor",
    "configure_logging",
    "format_exception_redacted",
    "get_logger",
]

LogFormat = Literal["console", "json"]
DEFAULT_LEVEL = "INFO"
DEFAULT_FORMAT: LogFormat = "console"

# Loggers of libraries that see URLs or request lines. They must propagate to the root
# handler and carry no handlers of their own, or they would bypass redaction point 3.
THIRD_PARTY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.internal",
    "aiohttp.websocket",
    "aiogram",
    "aiogram.dispatcher",
    "aiogram.event",
    "aiogram.middlewares",
    "aiogram.webhook",
    "aiogram.scene",
    "httpx",
    "httpcore",
    "google_genai",
    "asyncio",
)

_HANDLER_MARK = "_botdesk_handler"
_FACTORY_MARK = "_botdesk_redacting_factory"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time.

    A handler bound to the ``sys.stderr`` object of its creation keeps writing to a
    stream that pytest (or a GUI redirect) has since closed or replaced.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """Redaction point 3: the final text, whatever the renderer made of the event."""

    def format(self, record: logging.LogRecord) -> str:
        return REDACTOR.redact(super().format(record))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return REDACTOR.redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    # Objects (yarl.URL, requests, exceptions) render via repr() later; keep them as they
    # are unless their text carries a secret, in which case the redacted text replaces them.
    text = repr(value)
    clean = REDACTOR.redact(text)
    return value if clean == text else clean


def redact_event(_logger: Any, _method: str, event_dict: Mapping[str, Any]) -> dict[str, Any]:
    """structlog processor: redaction point 1 (every value of the event dict)."""
    out: dict[str, Any] = {}
    for key, value in event_dict.items():
        if key in ("_record", "_from_structlog"):
            out[key] = value
        else:
            out[key] = _redact_value(value)
    return out


def _format_exc_info(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Turn ``exc_info`` into redacted traceback text under ``exception``."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    exc: BaseException | None
    if isinstance(exc_info, BaseException):
        exc = exc_info
    elif isinstance(exc_info, tuple):
        exc = exc_info[1]
    else:
        exc = sys.exc_info()[1]
    if exc is not None:
        event_dict["exception"] = format_exception_redacted(exc).rstrip("\n")
    return event_dict


def _install_record_factory() -> None:
    """Redaction point 2: every stdlib record is cleaned as it is created."""
    current = logging.getLogRecordFactory()
    if getattr(current, _FACTORY_MARK, False):
        return
    original = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(*args, **kwargs)
        _redact_record(record)
        return record

    setattr(factory, _FACTORY_MARK, True)
    logging.setLogRecordFactory(factory)


def _redact_record(record: logging.LogRecord) -> None:
    # A dict msg is a structlog event, already redacted (point 1) and needed intact by
    # ProcessorFormatter; anything else (str, an exception object) is rendered here.
    if not isinstance(record.msg, dict):
        try:
            message = record.getMessage()
        except Exception:
            # logging would print msg and args raw in its "--- Logging error ---" report.
            message = f"{record.msg!s} [unformattable log arguments: {record.args!r}]"
            record.msg, record.args = REDACTOR.redact(message), ()
        else:
            clean = REDACTOR.redact(message)
            if clean != message:
                record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(record.exc_info[1]))
        record.exc_text = REDACTOR.redact(text.rstrip("\n"))
    if record.stack_info:
        record.stack_info = REDACTOR.redact(record.stack_info)


def _level_number(level: str) -> int:
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        raise ConfigError(
            f"unknown log level '{level}' (use DEBUG, INFO, WARNING, ERROR or CRITICAL)",
            key="log.level",
        )
    return number


def configure_logging(
    *,
    level: str = DEFAULT_LEVEL,
    fmt: LogFormat = DEFAULT_FORMAT,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and stdlib logging to ``stream`` (default: current stderr).

    Idempotent: a second call replaces the handler the first one installed and leaves
    other handlers (pytest's, a GUI's) alone.
    """
    if fmt not in ("console", "json"):
        raise ConfigError(f"unknown log format '{fmt}' (use console or json)", key="log.format")
    number = _level_number(level)

    shared: list[Callable[..., Any]] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Callable[..., Any]
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        isatty = getattr(stream or sys.stderr, "isatty", None)
        colors = bool(isatty and isatty())
        renderer = structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=_plain)

    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            _format_exc_info,
            redact_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: tests and the CLI reconfigure, and cached loggers would keep
        # the old chain.
        cache_logger_on_first_use=False,
    )

    formatter = _RedactingFormatter(
        foreign_pre_chain=[*shared, _format_exc_info, redact_event],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler: logging.Handler
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)

    for name in THIRD_PARTY_LOGGERS:
        lib_logger = logging.getLogger(name)
        lib_logger.setLevel(logging.NOTSET)
        lib_logger.propagate = True

    _install_record_factory()


def _plain(sio: TextIO, exc_info: Any) -> None:
    """ConsoleRenderer hook for exceptions that reach it unformatted: redact them too."""
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(exc, BaseException):
        sio.write("\n" + format_exception_redacted(exc))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` that goes through the redacting chain."""
    return structlog.stdlib.get_logger(name)
