"""How fast the CLI starts, and how much memory the commands that send or list take.

.venv/bin/python bench/cli_startup.py [--runs 20] [--command-runs 5]

1. `botdesk --help`: median and worst of N runs (goal under 0.5 s).
2. `botdesk campaign run ID` on a 3-recipient campaign against the sandbox (in its own
   process), then `subscribers list` and `campaign list`, each a fresh CLI process: wall time,
   time to the first message the sandbox accepted (its own ``time.monotonic()`` record, system
   wide on Linux, against the moment the CLI was spawned), its CPU (user+sys) and peak RSS
   (both from `/usr/bin/time`; CPU compares across machine load, wall time does not). Goals:
   first message within 1 s, every command under 120 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    SandboxProcess,
    banner,
    botdesk_app,
    create_campaign,
    register_bot,
    seed_subscribers,
    token_for,
)

HEAVY = ("aiogram", "sqlalchemy", "google.genai", "numpy", "structlog", "alembic")
FIRST_MESSAGE_GOAL_S = 1.0
RSS_GOAL_MB = 120


def cli(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "botdesk.cli.main", "--home", str(home), *args]


def help_figures(runs: int) -> None:
    exe = Path(sys.executable).with_name("botdesk")
    cmd = (
        [str(exe), "--help"]
        if exe.exists()
        else [sys.executable, "-m", "botdesk.cli.main", "--help"]
    )
    env = {**os.environ, "BOTDESK_KEYRING": "off"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm the file cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    print(
        f"botdesk --help: median {statistics.median(times) * 1000:.0f} ms, "
        f"worst {max(times) * 1000:.0f} ms over {runs} runs (goal < 500 ms)"
    )
    heavy = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import botdesk.cli.main"],
        capture_output=True,
        text=True,
        env=env,
    ).stderr
    loaded = [ln.split("|")[-1].strip() for ln in heavy.splitlines() if "|" in ln]
    for mod in HEAVY:
        print(f"  {mod:12s} imported by --help: {'yes' if mod in loaded else 'no'}")


def timed(cmd: list[str]) -> tuple[float, float, float, float]:
    """(spawned at, wall seconds, peak RSS MB, CPU seconds user+sys) of one CLI process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTDESK_")}
    env["BOTDESK_KEYRING"] = "off"
    import tempfile

    # Peak RSS through /usr/bin/time: wait4's ru_maxrss of a child spawned straight from this
    # process also counts this process's own footprint (the mm it was forked from).
    rss_file = tempfile.NamedTemporaryFile(suffix=".rss", delete=False).name
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["/usr/bin/time", "-f", "%M %U %S", "-o", rss_file, *cmd],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    _, status, _usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        assert proc.stderr is not None
        raise SystemExit(f"{cmd[4:]} failed: {proc.stderr.read().decode()[-2000:]}")
    peak_kb, user, system = Path(rss_file).read_text().split()[-3:]
    os.unlink(rss_file)
    return t0, wall, int(peak_kb) / 1024, float(user) + float(system)


async def command_figures(runs: int) -> None:
    bots = [("startbench_bot", token_for(1))]
    first: list[float] = []
    walls: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    async with (
        SandboxProcess(bots=bots) as sb,
        botdesk_app("") as app,
    ):
        home = app.home.path
        bot = await register_bot(app, "startbench", bots[0][1], sb.base)
        users = await sb.add_users(3, bots[0][0])
        await seed_subscribers(app, bot.id, users)
        for i in range(runs):
            cid = await create_campaign(app, bot, f"startup bench {i}")
            await sb.reset_arrivals()
            t0, wall, peak, used = await asyncio.to_thread(
                timed, cli(home, "campaign", "run", str(cid))
            )
            arrivals = await sb.arrivals(bots[0][0])
            if len(arrivals) != 3:
                raise SystemExit(f"campaign {cid}: {len(arrivals)} messages arrived, not 3")
            first.append(min(arrivals) - t0)
            walls.setdefault("campaign run ID", []).append(wall)
            rss.setdefault("campaign run ID", []).append(peak)
            cpu.setdefault("campaign run ID", []).append(used)
            for label, args in (
                ("subscribers list", ("subscribers", "list", "--bot", "startbench")),
                ("campaign list", ("campaign", "list")),
            ):
                _, wall, peak, used = await asyncio.to_thread(timed, cli(home, *args))
                walls.setdefault(label, []).append(wall)
                cpu.setdefault(label, []).append(used)
                rss.setdefault(label, []).append(peak)
    print(
        f"campaign run (3 recipients): first message accepted {statistics.median(first):.2f} s "
        f"after spawn (median of {runs}, worst {max(first):.2f} s; goal < "
        f"{FIRST_MESSAGE_GOAL_S:.0f} s)"
    )
    for label in walls:
        print(
            f"  {label:18s} wall median {statistics.median(walls[label]):.2f} s, "
            f"CPU (user+sys) median {statistics.median(cpu[label]):.2f} s, "
            f"peak RSS max {max(rss[label]):.0f} MB (goal < {RSS_GOAL_MB} MB)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20, help="runs of --help")
    ap.add_argument("--command-runs", type=int, default=5, help="runs of each command")
    args = ap.parse_args()
    banner(sys.argv)
    help_figures(args.runs)
    asyncio.run(command_figures(args.command_runs))


if __name__ == "__main__":
    main()
