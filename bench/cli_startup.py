"""How long `botdesk --help` takes (goal: under 0.5 s); prints median and worst of N runs.

.venv/bin/python bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    exe = Path(sys.executable).with_name("botdesk")
    cmd = (
        [str(exe), "--help"]
        if exe.exists()
        else [sys.executable, "-m", "botdesk.cli.main", "--help"]
    )
    env = {**os.environ, "BOTDESK_KEYRING": "off"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm the file cache
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    print(
        f"botdesk --help: median {statistics.median(times) * 1000:.0f} ms, "
        f"worst {max(times) * 1000:.0f} ms over {args.runs} runs (goal < 500 ms)"
    )
    heavy = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import botdesk.cli.main"],
        capture_output=True,
        text=True,
        env=env,
    ).stderr
    loaded = [ln.split("|")[-1].strip() for ln in heavy.splitlines() if "|" in ln]
    for mod in ("aiogram", "sqlalchemy", "google.genai", "numpy", "structlog", "alembic"):
        print(f"  {mod:12s} imported by --help: {'yes' if mod in loaded else 'no'}")


if __name__ == "__main__":
    main()
