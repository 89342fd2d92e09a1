"""Inbound updates handled per second by one `botdesk serve` process, and its peak memory.

Usage: .venv/bin/python bench/inbound_updates.py [--backend sqlite|postgresql|both]
           [--users 200] [--messages 50] [--replies] [--no-embeddings] [--pg-url URL]
           [--profile FILE]

The sandbox runs as its own process (its CPU does not count against the runtime's), with
rate limits lifted and no latency. N users each send M messages through the sandbox's
control API before `botdesk serve` starts, so the measurement is the rate at which one
serve process drains a backlog: from its first committed update to its last, read from the
``processed_updates`` table. Peak RSS is the serve process's VmHWM. Without ``--replies`` the
bot's auto-reply is off (pure inbound handling); with it, every message is also answered.

PostgreSQL: ``--pg-url`` (default $BOTDESK_BENCH_PG_URL or $BOTDESK_TEST_PG_URL) names a
server; the bench creates a scratch database there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from botdesk.app import open_app
from botdesk.bots import BotRegistry
from botdesk.store.models import ProcessedUpdate

BOT = "bench_bot"
TOKEN = "7000000001:" + "B" * 35
PY = sys.executable


@dataclass
class Result:
    backend: str
    updates: int
    seconds: float
    wall: float
    peak_rss_mb: float
    cpu_drain: float  # CPU seconds the serve process used while draining
    in_txn: float  # seconds spent inside the batches' transactions (botdesk_handler_seconds)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTDESK_")}
    env.update(BOTDESK_KEYRING="off", BOTDESK_HOME=str(home))
    return env


async def start_sandbox(port: int, log: Path) -> asyncio.subprocess.Process:
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "botdesk.sandbox", "--port", str(port), "--bot", f"{BOT}:{TOKEN}",
            "--no-limits", "--latency", "0", "--seed", "3",
            stdout=out, stderr=out,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"{base}/sandbox/bots") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    await proc.wait()
    raise SystemExit(f"sandbox did not start; see {log}")


async def flood(base: str, users: int, messages: int) -> int:
    """Each user sends its messages in order; users write in parallel."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sandbox/users", json={"count": users}) as r:
            ids = [u["id"] for u in await r.json()]

        async def one(uid: int) -> None:
            for k in range(messages):
                body = {"bot": BOT, "text": f"message {k} from {uid}"}
                async with http.post(f"{base}/sandbox/users/{uid}/send", json=body) as r:
                    if r.status != 200:
                        raise SystemExit(f"sandbox refused a message: {await r.text()}")

        sem = asyncio.Semaphore(32)

        async def bounded(uid: int) -> None:
            async with sem:
                await one(uid)

        await asyncio.gather(*(bounded(u) for u in ids))
    return users * messages


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


async def handler_seconds(port: int, updates: int) -> float:
    """About how long the serve process spent inside update transactions, from /metrics.

    ``botdesk_handler_seconds`` observes one value per batch (its time per update), so the
    total is sum * updates / count: exact when the batches are the same size.
    """
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as r,
    ):
        text = await r.text()
    got = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for key in got:
            if line.startswith(f"botdesk_handler_seconds_{key}{{"):
                got[key] += float(line.rsplit(" ", 1)[1])
    return got["sum"] * updates / got["count"] if got["count"] else float("nan")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def run_one(backend: str, args: argparse.Namespace, pg_url: str | None) -> Result:
    home = Path(tempfile.mkdtemp(prefix=f"bench-inbound-{backend}-"))
    toml = "[delivery]\nrate = 1000.0\n"
    if args.no_embeddings:
        toml += "\n[assistant]\nembeddings = false\n"
    if not args.replies:
        toml += '\n[bots.bench]\nauto_reply = ""\n'
    if pg_url:
        toml = f'[database]\nurl = "{pg_url}"\n\n' + toml
    (home / "botdesk.toml").write_text(toml)
    port, mport = free_port(), free_port()
    sandbox = await start_sandbox(port, home / "sandbox.log")
    serve: asyncio.subprocess.Process | None = None
    try:
        base = f"http://127.0.0.1:{port}"
        async with open_app(home, configure_logs=False) as app:
            await BotRegistry(app.db, app.secrets).add(
                "bench", TOKEN, api_base=base, connect_timeout=5, read_timeout=30
            )
            t = time.perf_counter()
            total = await flood(base, args.users, args.messages)
            print(f"  [{backend}] {total} updates queued in the sandbox in "
                  f"{time.perf_counter() - t:.1f}s; starting serve", flush=True)  # fmt: skip
            count = select(func.count()).select_from(ProcessedUpdate)
            with (home / "serve.log").open("wb") as out:
                started = time.perf_counter()
                prof = ["-m", "cProfile", "-o", args.profile] if args.profile else []
                serve = await asyncio.create_subprocess_exec(
                    PY, *prof, "-m", "botdesk.cli.main", "--home", str(home), "serve",
                    "--no-delivery", "--metrics", f"127.0.0.1:{mport}",
                    stdout=out, stderr=out, env=env_for(home),
                )  # fmt: skip
            first_at = None
            cpu_at_first = 0.0
            n = 0
            deadline = started + args.timeout
            while n < total:
                if time.perf_counter() > deadline or serve.returncode is not None:
                    raise SystemExit(f"serve handled {n}/{total}; see {home / 'serve.log'}")
                async with app.db.read() as conn:
                    n = int((await conn.execute(count)).scalar_one())
                if n and first_at is None:
                    first_at = time.perf_counter()
                    cpu_at_first = cpu_seconds(serve.pid)
                await asyncio.sleep(0.02)
            done_at = time.perf_counter()
            rss = peak_rss_mb(serve.pid)
            cpu = cpu_seconds(serve.pid) - cpu_at_first
            in_txn = await handler_seconds(mport, total)
        assert first_at is not None
        return Result(backend, total, done_at - first_at, done_at - started, rss, cpu, in_txn)
    finally:
        for proc in (serve, sandbox):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def pg_scratch(server_url: str) -> tuple[str, str]:
    """Create a scratch database; returns (its SQLAlchemy URL, its name)."""
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    head, _sep, _db = server_url.rpartition("/")
    return f"{head}/{name}", name


async def pg_drop(server_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> list[Result]:
    results = []
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        if backend == "sqlite":
            results.append(await run_one("sqlite", args, None))
            continue
        if not args.pg_url:
            print("  [postgresql] skipped: no --pg-url / $BOTDESK_TEST_PG_URL", flush=True)
            continue
        url, name = await pg_scratch(args.pg_url)
        try:
            results.append(await run_one("postgresql", args, url))
        finally:
            await pg_drop(args.pg_url, name)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--messages", type=int, default=50, help="messages per user")
    ap.add_argument("--replies", action="store_true", help="also auto-reply to every message")
    ap.add_argument(
        "--no-embeddings",
        action="store_true",
        help="assistant.embeddings = false: the MiniLM model is not loaded (memory)",
    )
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("BOTDESK_BENCH_PG_URL") or os.environ.get("BOTDESK_TEST_PG_URL"),
    )
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--profile", metavar="FILE", help="run serve under cProfile, stats to FILE")
    args = ap.parse_args()
    print("command:", shlex.join([Path(PY).name, *sys.argv]))
    print(f"cpus: {os.cpu_count()}  users: {args.users}  messages/user: {args.messages}  "
          f"replies: {'on' if args.replies else 'off'}  "
          f"embeddings: {'off' if args.no_embeddings else 'on'}")  # fmt: skip
    results = asyncio.run(main_async(args))
    print(f"{'backend':<11} {'updates':>8} {'drain s':>8} {'updates/s':>10} "
          f"{'wall s':>7} {'peak RSS MB':>12} {'serve CPU s':>12} {'in txn s':>9}")  # fmt: skip
    for r in results:
        print(f"{r.backend:<11} {r.updates:>8} {r.seconds:>8.2f} {r.rate:>10.0f} "
              f"{r.wall:>7.2f} {r.peak_rss_mb:>12.1f} {r.cpu_drain:>12.2f} "
              f"{r.in_txn:>9.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
