"""Commands that send or list load neither the assistant nor anything they do not use.

Structural, not timed: `campaign run`, `subscribers list` and `campaign list` run in a fresh
interpreter against the sandbox, and the test reads which modules that interpreter loaded.
The figures (time to first message, peak RSS) are in bench/cli_startup.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.e2e.campaign_support import copies, create, seed, status
from tests.e2e.support import register

from botdesk.app import App

# The assistant's model and providers, the GUI: none of it belongs to a command that sends.
HEAVY = (
    "numpy",
    "onnxruntime",
    "tokenizers",
    "huggingface_hub",
    "google.genai",
    "openai",
    "PySide6",
    "botdesk.assistant.embeddings",
    "botdesk.assistant.service",
    "botdesk.runtime.assistant_port",
)

# What `campaign run` on an up-to-date database does not need at start-up (issue 13, part 2):
# the migration tool, the serve runtime, aiohttp's server, and what other commands use (the
# sequence and rules file formats, YAML, the modules of other command groups).
STARTUP = (
    "alembic",
    "botdesk.runtime.service",
    "aiohttp.web",
    "pygments",
    "botdesk.sequence_file",
    "botdesk.reply_rules",
    "yaml",
    "botdesk.cli.kb_cmd",
    "botdesk.cli.sequence_cmd",
    "botdesk.cli.serve_cmd",
    "botdesk.cli.gui_cmd",
)

# `botdesk --help` lists every command without importing what any of them runs on.
HELP_HEAVY = (
    "sqlalchemy", "aiogram", "aiohttp", "pydantic", "numpy", "yaml", "structlog", "alembic",
    "botdesk.config", "botdesk.campaigns", "botdesk.store.db",
)  # fmt: skip

PROBE = r"""
import json, sys
from botdesk.cli.main import main
rc = main(sys.argv[1:])
import aiogram.types as t
built = sorted(n for n in t.__all__ if getattr(getattr(t, n), "__pydantic_complete__", False))
print("@@" + json.dumps({"rc": rc, "modules": sorted(sys.modules), "built": built}))
"""


HELP_PROBE = r"""
import contextlib, io, json, sys
from botdesk.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main(["--help"])
print("@@" + json.dumps({"rc": rc, "help": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_help_lists_every_command_and_imports_none_of_their_machinery() -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTDESK_")}
    proc = subprocess.run(
        [sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@"))
    result = json.loads(line[2:])
    assert result["rc"] == 0
    for command in ("campaign", "subscribers", "kb", "sequence", "serve", "gui", "sandbox"):
        assert f" {command} " in result["help"], command
    assert [m for m in HELP_HEAVY if m in result["modules"]] == []


async def _probe(home: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTDESK_")}
    env["BOTDESK_KEYRING"] = "off"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, "--home", str(home), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    line = next(ln for ln in out.decode().splitlines() if ln.startswith("@@"))
    result: dict[str, Any] = json.loads(line[2:])
    assert result["rc"] == 0, err.decode()
    return result


async def test_campaign_run_and_listing_load_nothing_heavy(
    app: App, sandbox: Any, home: Path
) -> None:
    await register(app, sandbox, "lean", "lean_bot")
    await seed(app, sandbox, "lean", "lean_bot", 3)
    cid = await create(app, "lean", "lean start news")

    run = await _probe(home, "campaign", "run", str(cid))
    st = await status(app, cid)
    assert st["sent"] == 3 and st["state"] == "completed"
    assert sorted(copies(sandbox, "lean_bot", "lean start news").values()) == [1, 1, 1]
    assert [m for m in HEAVY if m in run["modules"]] == []
    # Nor the migration tool (the database is at head), the serve runtime or aiohttp's server.
    assert [m for m in STARTUP if m in run["modules"]] == []
    # aiogram's models are built on first use: a send builds a few, never the whole Bot API
    # (Update and the inline-query family are only for serving).
    assert "Update" not in run["built"] and "InlineQuery" not in run["built"]

    for args in (("subscribers", "list", "--bot", "lean"), ("campaign", "list")):
        listed = await _probe(home, *args)
        assert [m for m in HEAVY if m in listed["modules"]] == [], args
