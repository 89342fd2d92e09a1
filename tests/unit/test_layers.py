"""The layer rules of DESIGN.md, checked by walking every module's imports.

core <- store, telegram <- services <- runtime <- interfaces; the sandbox stands alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "botdesk"

CORE = {"errors", "error_report", "config", "log", "secrets", "redact", "clock", "textfiles"}
SERVICES = {
    "bots",
    "subscribers",
    "subscriber_import",
    "segments",
    "audience",
    "campaigns",
    "campaign_actions",
    "clicks",
    "inbox",
    "knowledge_base",
    "reply_rules",
    "delivery",
    "assistant",
    "overview",
    "abtest",
    "ab_campaigns",
    "sequences",
    "sequence_runner",
    "sequence_file",
    "sequence_schedule",
    "yaml_file",
}
ORDER = {"core": 0, "store": 1, "telegram": 1, "services": 2, "runtime": 3, "cli": 4, "gui": 4}


def layer(module: str) -> str:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in CORE:
        return "core"
    if top in ("store", "telegram", "runtime", "cli", "gui", "sandbox", "demo"):
        return "runtime" if top in ("demo",) else top
    if top == "app":
        return "runtime"  # the composition root the interfaces open
    if top in SERVICES:
        return "services"
    return "core"  # botdesk/__init__


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


ALL = modules()


@pytest.mark.parametrize(("name", "path"), ALL, ids=[n for n, _ in ALL])
def test_imports_respect_layers(name: str, path: Path) -> None:
    mine = layer(name)
    for imp in imports(path):
        if not imp.startswith("botdesk.") or imp == "botdesk.__version__":
            continue
        theirs = layer(imp)
        if mine == "sandbox":
            assert theirs == "sandbox", f"{name} imports {imp}: the sandbox stands alone"
            continue
        # Only the interfaces and the demo run the sandbox (as a tool, not a dependency).
        assert theirs != "sandbox" or name.startswith(("botdesk.cli.", "botdesk.runtime.demo")), (
            f"{name} imports {imp}"
        )
        if theirs == "sandbox":
            continue
        if mine in ("store", "telegram"):
            assert theirs in ("core", mine), f"{name} ({mine}) imports {imp} ({theirs})"
        else:
            assert ORDER[theirs] <= ORDER[mine], f"{name} ({mine}) imports {imp} ({theirs})"
        if mine == "cli":
            assert not imp.startswith("botdesk.store.models"), f"{name} imports store models"
        if mine == "gui":  # the console reaches data only through services
            assert not imp.startswith(("botdesk.store", "botdesk.telegram")), (
                f"{name} imports {imp}"
            )


def _uses(path: Path, needles: tuple[str, ...]) -> bool:
    text = path.read_text(encoding="utf-8")
    return any(n in text for n in needles)


def test_only_store_db_opens_connections() -> None:
    allowed = {SRC / "store" / "db.py", SRC / "store" / "migrations" / "env.py"}
    offenders = [
        str(p)
        for _n, p in ALL
        if p not in allowed
        and _uses(
            p, ("create_async_engine(", "create_engine(", "sqlite3.connect(", "asyncpg.connect(")
        )
    ]
    assert offenders == []


def test_only_telegram_builds_aiogram_sessions() -> None:
    # sandbox/testing.py builds a plain aiogram client for tests of the sandbox itself.
    allowed = {SRC / "sandbox" / "testing.py"}
    offenders = [
        str(p)
        for n, p in ALL
        if not n.startswith("botdesk.telegram")
        and p not in allowed
        and _uses(p, ("AiohttpSession", "aiogram.client.session", "Bot(token"))
    ]
    assert offenders == []


def test_nothing_imports_qt_outside_gui() -> None:
    offenders = [
        n for n, p in ALL if not n.startswith("botdesk.gui") and _uses(p, ("PySide6", "PyQt"))
    ]
    assert offenders == []


def test_gui_touches_no_sql_or_aiogram() -> None:
    offenders = [
        n
        for n, p in ALL
        if n.startswith("botdesk.gui")
        and any(
            i.split(".")[0] in ("sqlalchemy", "aiogram", "asyncpg", "aiosqlite") for i in imports(p)
        )
    ]
    assert offenders == []
