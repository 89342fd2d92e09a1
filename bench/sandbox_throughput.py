"""How many sendMessage/s the sandbox sustains, and what each costs it in CPU.

The server runs in its own process (``python -m botdesk.sandbox --no-limits --latency 0``)
so the load generator's CPU is not charged to it; the figure reported per core is
requests divided by the server process's own CPU seconds (user + system, from /proc).

    .venv/bin/python bench/sandbox_throughput.py [--requests 20000] [--concurrency 64]

``--paced SECONDS`` instead checks the limiter on the wire: with limits on and the default
30-120 ms latency, a client sends evenly at 99.5% of 30/s, then at 3x the rate, and the
script prints how many of each were answered 429.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import aiohttp

TOKEN = "123456:" + "B" * 35


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(requests: int, concurrency: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botdesk.sandbox", "--port", "0", "--latency", "0-0",
        "--no-limits", "--users", str(concurrency), "--auto-start", "--bot", f"bench_bot:{TOKEN}",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    base = (await proc.stdout.readline()).decode().split(" on ")[1].strip()
    await proc.stdout.readline()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:
            async with http.get(f"{base}/sandbox/users") as resp:
                users = [u["id"] for u in await resp.json()]
            url = f"{base}/bot{TOKEN}/sendMessage"
            left, failures = 500, 0

            async def worker(chat_id: int) -> None:
                nonlocal left, failures
                while left > 0:
                    left -= 1
                    # Form fields, as aiogram sends them.
                    async with http.post(url, data={"chat_id": str(chat_id), "text": "hello"}) as r:
                        await r.read()
                        failures += r.status != 200

            await asyncio.gather(*(worker(u) for u in users[:50]))  # warm-up round
            left, failures = requests, 0
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            await asyncio.gather(*(worker(u) for u in users))
            wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        await proc.wait()
    print(f"requests={requests} concurrency={concurrency} failures={failures}")
    print(f"wall: {requests / wall:,.0f} sendMessage/s ({wall:.2f} s, client shares the machine)")
    print(f"server CPU: {cpu:.2f} s -> {requests / cpu:,.0f} sendMessage/s per core, "
          f"{1e6 * cpu / requests:.0f} us per sendMessage")  # fmt: skip


async def paced(seconds: float) -> None:
    users = int(seconds * 125) + 10  # 29.85/s then 90/s, one fresh chat per message
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botdesk.sandbox", "--port", "0", "--users", str(users),
        "--auto-start", "--bot", f"bench_bot:{TOKEN}", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    base = (await proc.stdout.readline()).decode().split(" on ")[1].strip()
    await proc.stdout.readline()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/sandbox/users") as resp:
                chats = iter([u["id"] for u in await resp.json()])
            url = f"{base}/bot{TOKEN}/sendMessage"

            async def one(chat_id: int) -> int:
                async with http.post(url, data={"chat_id": str(chat_id), "text": "hi"}) as r:
                    await r.read()
                    return r.status

            for label, rate in (("99.5% of 30/s", 30 * 0.995), ("3x 30/s", 90.0)):
                loop = asyncio.get_running_loop()
                start, tasks = loop.time(), []
                for k in range(int(seconds * rate)):
                    await asyncio.sleep(max(0.0, start + k / rate - loop.time()))
                    tasks.append(asyncio.create_task(one(next(chats))))
                statuses = await asyncio.gather(*tasks)
                await asyncio.sleep(1.5)  # let the buckets refill between runs
                print(f"{label}: sent={len(statuses)} 429={statuses.count(429)}")
    finally:
        proc.terminate()
        await proc.wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--paced", type=float, default=0.0, metavar="SECONDS")
    args = ap.parse_args()
    if args.paced:
        asyncio.run(paced(args.paced))
    else:
        asyncio.run(main(args.requests, args.concurrency))
