"""The sandbox stands alone: it imports nothing else from botdesk, and the CLI loads it lazily."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import botdesk.sandbox

PACKAGE = Path(botdesk.sandbox.__file__).parent


def test_sandbox_imports_nothing_else_from_botdesk() -> None:
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = node.module or ""
                if node.level > 1 or (node.level == 0 and name.startswith("botdesk")):
                    offenders.append(f"{path.name}: from {'.' * node.level}{name}")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.name}: import {a.name}" for a in node.names
                              if a.name.startswith("botdesk")]  # fmt: skip
    assert offenders == []


def test_cli_module_imports_the_sandbox_lazily() -> None:
    code = "import sys, botdesk.cli.sandbox; print('botdesk.sandbox' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
