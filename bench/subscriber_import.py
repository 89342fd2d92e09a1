"""How fast `subscribers import` records a large file: rows per second, fresh and merged.

.venv/bin/python bench/subscriber_import.py [--rows 100000] [--backend sqlite|postgresql]
    [--pg-url URL] [--format csv|jsonl]

Writes a file of N rows (names, username, language, two tags, started_at, a custom field; one
row in a thousand malformed), then times ``subscriber_import.import_rows`` (what the CLI
command runs) into an empty bot (every row new: subscriber, consent event and tags) and a
second time (every row already a subscriber: merged). Reading the file is part of the time.
The CPU figure is this process's (parsing, SQLAlchemy, the driver; not the PostgreSQL server):
steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import DEFAULT_PG_URL, Backend, banner, botdesk_app, cpu_self, insert_bot


def write_file(path: Path, rows: int, fmt: str) -> int:
    """The file; returns how many rows are malformed."""
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            fh.write("chat_id,first_name,last_name,username,language,tags,started_at,plan\n")
        for i in range(rows):
            chat = 100_000_000 + i
            if i % 1000 == 999:
                bad += 1
                chat_text = f"x{i}"
            else:
                chat_text = str(chat)
            started = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:{i % 60:02d}:00Z"
            tags = [f"t{i % 7}", "old"]
            if fmt == "csv":
                fh.write(
                    f"{chat_text},User{i},Last{i},user{i},en,{';'.join(tags)},{started},"
                    f"{'pro' if i % 3 else 'free'}\n"
                )
            else:
                record = {
                    "chat_id": chat_text if chat_text.startswith("x") else chat,
                    "first_name": f"User{i}", "last_name": f"Last{i}", "username": f"user{i}",
                    "language": "en", "tags": tags, "started_at": started,
                    "plan": "pro" if i % 3 else "free",
                }  # fmt: skip
                fh.write(json.dumps(record) + "\n")
    return bad


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL)
    ap.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    args = ap.parse_args()
    banner(sys.argv)

    from botdesk.subscriber_import import import_rows, read_file

    backend = Backend(args.backend, args.pg_url if args.backend == "postgresql" else None)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = Path(tmp) / f"old_bot.{args.format}"
        bad = write_file(path, args.rows, args.format)
        size_mb = path.stat().st_size / 1e6
        print(f"file: {args.rows} rows ({bad} malformed), {args.format}, {size_mb:.1f} MB")
        async with botdesk_app("", backend=backend) as app:
            bot_id = await insert_bot(app)
            for label in ("fresh (all new)", "again (all merged)"):
                t0, c0 = time.perf_counter(), cpu_self()
                report = await import_rows(
                    app.db, bot_id, read_file(path), source="old", file_name=path.name,
                    now=datetime.now(UTC),
                )  # fmt: skip
                took, cpu = time.perf_counter() - t0, cpu_self() - c0
                print(
                    f"{args.backend} {label}: {took:.2f} s, {report.rows / took:,.0f} rows/s, "
                    f"{cpu:.2f} s CPU in botdesk's process "
                    f"(added {report.added}, merged {report.merged}, skipped {report.skipped})"
                )


if __name__ == "__main__":
    asyncio.run(main())
