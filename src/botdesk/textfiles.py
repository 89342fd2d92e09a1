"""Reading an operator's text file (knowledge base, rules): size cap, UTF-8, one clear error."""

from __future__ import annotations

from pathlib import Path

from botdesk.errors import UserError


def read_text(path: Path, *, limit: int, error: type[UserError]) -> str:
    """The file's text (a UTF-8 BOM dropped); ``error`` for a missing, large or binary file."""
    try:
        if path.stat().st_size > limit:
            raise error(f"{path} is larger than {limit} bytes")
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
