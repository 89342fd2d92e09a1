"""The one place that opens database connections.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` (the delivery ledger
must survive power loss), foreign keys on and a busy timeout. Every write transaction starts
with ``BEGIN IMMEDIATE``: a deferred BEGIN that reads and then writes fails with "database is
locked" under concurrent writers whatever the busy timeout, an immediate one waits its turn.
If even that wait times out, ``write()`` retries the BEGIN with backoff and counts it.

A file-backed SQLite database also has a *lane*: one stdlib ``sqlite3`` connection on its own
thread, for the delivery ledger's hot transactions (``write_lane``). Through SQLAlchemy and
aiosqlite every statement is several hops to the driver's thread and back (cursor, execute,
fetch, close; BEGIN, COMMIT and the pool's reset too), about 60 µs of CPU each: a ledger
transaction of two statements cost 0.6-1 ms, more than the rows in it. The lane runs a whole
transaction in one hop. Same file, same PRAGMAs, same ``BEGIN IMMEDIATE``.

PostgreSQL (``postgresql+asyncpg://``) uses ordinary transactions; workers coordinate with
``FOR UPDATE SKIP LOCKED`` in the services' statements.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import random
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from botdesk.errors import ConfigError, MigrationError, StoreError

DEFAULT_BUSY_TIMEOUT_MS = 5000
DEFAULT_WRITE_RETRIES = 8
LOCK_WAIT_THRESHOLD_S = 0.005

T = TypeVar("T")


@dataclass
class LockStats:
    """How often writers had to wait for SQLite's write lock (exposed by `doctor` and benches)."""

    write_transactions: int = 0
    lock_waits: int = 0
    retries: int = 0
    busy_errors: int = 0
    wait_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def redact_url(url: str) -> str:
    """The URL without its password, for messages and `config show`."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def dialect_insert(dialect: str, table: Any) -> Any:
    """``table``'s INSERT in the dialect's own flavour (``on_conflict_do_...``), importing only
    that dialect: PostgreSQL's costs a command on SQLite about 40 ms at start-up."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _sqlite_pragmas(conn: Any, busy_timeout_ms: int) -> None:
    conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite's implicit one is deferred)
    cur = conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class SqliteLane:
    """One ``sqlite3`` connection on one thread; a transaction is one hop to it and back."""

    def __init__(self, path: str, *, busy_timeout_ms: int) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="botdesk-lane")
        self._conn: sqlite3.Connection | None = None  # opened and used on the lane thread only

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, check_same_thread=False)
            _sqlite_pragmas(self._conn, self._busy_timeout_ms)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a write transaction on the lane thread.

        A caller cancelled meanwhile does not stop the transaction: it still commits (or
        rolls back on error) on the lane thread; the caller just does not see the result.
        """
        fut = asyncio.get_running_loop().run_in_executor(self._executor, self._transaction, fn)
        return await asyncio.shield(fut)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


class Database:
    """Engines for one database, with ``read()`` and ``write()`` transactions."""

    def __init__(
        self,
        url: str,
        engine: AsyncEngine,
        read_engine: AsyncEngine,
        lane: SqliteLane | None = None,
    ) -> None:
        self.url = url
        self.engine = engine
        self._read_engine = read_engine
        self.lane = lane
        self.stats = LockStats()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @classmethod
    def open(
        cls,
        url: str,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        pool_size: int = 5,
        schema: str | None = None,
    ) -> Database:
        """Create engines (no connection is made until first use)."""
        try:
            if url.startswith("sqlite"):
                return cls._open_sqlite(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
            if url.startswith("postgresql"):
                return cls._open_postgres(url, pool_size=pool_size, schema=schema)
        except ImportError as exc:  # a driver missing from the install
            raise ConfigError(f"database driver not available: {exc}", key="database.url") from exc
        raise ConfigError(
            "unsupported database URL (use sqlite+aiosqlite:/// or postgresql+asyncpg://)",
            key="database.url",
        )

    @classmethod
    def _open_sqlite(cls, url: str, *, busy_timeout_ms: int, pool_size: int) -> Database:
        if url.startswith("sqlite://"):
            url = "sqlite+aiosqlite://" + url[len("sqlite://") :]
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)

        def make(immediate: bool) -> AsyncEngine:
            # Pooled: opening an aiosqlite connection (a thread, the PRAGMAs) costs 2-3 ms of
            # CPU, several times a whole ledger transaction. Nothing here forks with an open
            # pool (tests spawn fresh processes), and close() disposes of it.
            engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size * 2)

            @event.listens_for(engine.sync_engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                _sqlite_pragmas(dbapi_conn, busy_timeout_ms)

            @event.listens_for(engine.sync_engine, "begin")
            def _on_begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

            return engine

        file_backed = bool(path) and ":memory:" not in path and "?" not in path
        file_backed = file_backed and not path.startswith("file:")
        lane = SqliteLane(path, busy_timeout_ms=busy_timeout_ms) if file_backed else None
        return cls(url, make(True), make(False), lane)

    @classmethod
    def _open_postgres(cls, url: str, *, pool_size: int, schema: str | None) -> Database:
        connect_args: dict[str, Any] = {}
        if schema:
            connect_args["server_settings"] = {"search_path": schema}
        engine = create_async_engine(
            url, pool_size=pool_size, pool_pre_ping=True, connect_args=connect_args
        )
        return cls(url, engine, engine)

    async def close(self) -> None:
        if self.lane is not None:
            await self.lane.close()
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (deferred on SQLite, so readers never take the write lock)."""
        try:
            async with self._read_engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            raise StoreError(f"database read failed: {_short(exc)}") from exc

    @asynccontextmanager
    async def write(
        self, *, retries: int = DEFAULT_WRITE_RETRIES
    ) -> AsyncIterator[AsyncConnection]:
        """A write transaction; on SQLite it holds the write lock from its first statement."""
        self.stats.write_transactions += 1
        conn = await self._begin_write(retries)
        try:
            yield conn
        except BaseException:
            await _abandon(conn)
            raise
        try:
            await conn.commit()
        except BaseException as exc:
            await _abandon(conn)
            if isinstance(exc, DBAPIError):
                raise StoreError(f"database commit failed: {_short(exc)}") from exc
            raise
        await conn.close()

    async def write_lane(
        self, fn: Callable[[sqlite3.Connection], T], *, retries: int = DEFAULT_WRITE_RETRIES
    ) -> T:
        """Run ``fn(sqlite3_connection)`` in one write transaction on the lane (see the module
        docstring); only where ``self.lane`` is set. Lock waits are retried like ``write()``."""
        if self.lane is None:
            raise StoreError("this database has no SQLite lane")
        self.stats.write_transactions += 1
        delay = 0.02
        for attempt in range(retries + 1):
            started = time.perf_counter()
            try:
                return await self.lane.run(fn)
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise StoreError(f"database write failed: {_short(exc)}") from exc
                self.stats.wait_seconds += time.perf_counter() - started
                delay = await self._back_off(exc, last=attempt == retries, delay=delay)
            except sqlite3.Error as exc:
                raise StoreError(f"database write failed: {_short(exc)}") from exc
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def write_asyncpg(self) -> AsyncIterator[Any]:
        """A write transaction on the pooled connection's own asyncpg connection (PostgreSQL).

        For the delivery ledger's hot statements: asyncpg prepares and caches them, and the
        rows skip SQLAlchemy's compile and result layers (about half the CPU of a ledger
        transaction). The connection goes back to the pool afterwards, as with ``write()``.
        """
        if self.is_sqlite:
            raise StoreError("write_asyncpg needs PostgreSQL")
        self.stats.write_transactions += 1
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pg = raw.driver_connection
                assert pg is not None
                async with pg.transaction():
                    yield pg
        except DBAPIError as exc:
            raise StoreError(f"database write failed: {_short(exc)}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("asyncpg"):
                raise StoreError(f"database write failed: {_short(exc)}") from exc
            raise

    async def _back_off(self, exc: Exception, *, last: bool, delay: float) -> float:
        """A writer found the lock taken past the busy timeout: count it, give up on the last
        attempt, else sleep with jitter; the next delay."""
        self.stats.lock_waits += 1
        if last:
            self.stats.busy_errors += 1
            raise StoreError("database is locked: too many concurrent writers") from exc
        self.stats.retries += 1
        await asyncio.sleep(delay * (1 + random.random()))
        return min(delay * 2, 1.0)

    async def _begin_write(self, retries: int) -> AsyncConnection:
        delay = 0.02
        for attempt in range(retries + 1):
            conn = await self.engine.connect()
            started = time.perf_counter()
            try:
                await conn.begin()
            except OperationalError as exc:
                await _abandon(conn)
                waited = time.perf_counter() - started
                self.stats.wait_seconds += waited
                if not _is_locked(exc):
                    raise StoreError(f"database unavailable: {_short(exc)}") from exc
                delay = await self._back_off(exc, last=attempt == retries, delay=delay)
                continue
            except (DBAPIError, OSError) as exc:
                await _abandon(conn)
                raise StoreError(f"database unavailable: {_short(exc)}") from exc
            except BaseException:
                # Cancelled while BEGIN IMMEDIATE ran in the driver's thread: it may hold the
                # write lock already. Give the connection back rolled back, or the lock would
                # stay with a connection nobody uses (every other writer then times out).
                await _abandon(conn)
                raise
            waited = time.perf_counter() - started
            if waited > LOCK_WAIT_THRESHOLD_S and self.is_sqlite:
                self.stats.lock_waits += 1
                self.stats.wait_seconds += waited
            return conn
        raise AssertionError("unreachable")

    # -- migrations -------------------------------------------------------------------

    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        return cfg

    async def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (idempotent).

        A database already at the code's head is told by one read of ``alembic_version``
        against the head read from the migration files: importing alembic and running its
        upgrade to find nothing to do cost every CLI command about 0.1-0.2 s (and took the
        write lock). Anything else (an older or unknown revision, no table yet, several
        heads) goes through alembic as before.
        """
        if revision == "head" and (head := code_head()) is not None:
            if await self.stored_revisions() == [head]:
                return
        import logging

        # Alembic narrates every plugin at INFO (some at import); botdesk reports the outcome.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from alembic import command

        cfg = self._alembic_config()

        def run(sync_conn: Any) -> None:
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, revision)

        try:
            async with self.write() as conn:
                await conn.run_sync(run)
        except DBAPIError as exc:
            raise MigrationError(f"migration failed: {_short(exc)}") from exc

    async def stored_revisions(self) -> list[str] | None:
        """The revisions recorded in ``alembic_version``; None when it cannot be read (a new
        database has no such table)."""
        from sqlalchemy import text

        try:
            async with self.read() as conn:
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except StoreError:
            return None
        return [str(r[0]) for r in rows]

    async def revision_status(self) -> tuple[str | None, str]:
        """(current revision in the database, head revision of the code)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self._alembic_config())
        head = script.get_current_head() or ""

        def current(sync_conn: Any) -> str | None:
            return MigrationContext.configure(sync_conn).get_current_revision()

        async with self.read() as conn:
            cur = await conn.run_sync(current)
        return cur, head

    async def ensure_current(self) -> None:
        cur, head = await self.revision_status()
        if cur != head:
            raise MigrationError(
                f"database schema is at {cur or 'nothing'}, code expects {head}: "
                "run `botdesk db upgrade`"
            )


_MIGRATIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)


@functools.lru_cache(maxsize=1)
def code_head(versions: Path = _MIGRATIONS) -> str | None:
    """The one head revision of the migration files, read without alembic; None when it
    cannot be told for sure (several heads, a file it cannot read): use alembic then."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found = {m[1]: m[2] for m in _REVISION_LINE.finditer(path.read_text("utf-8"))}
        try:
            rev = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found.get("down_revision", "None"))
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(rev, str):
            return None
        revisions.add(rev)
        parents.update([down] if isinstance(down, str) else (down or ()))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def _abandon(conn: AsyncConnection) -> None:
    """Roll back and close, whatever happens, even when the caller is being cancelled."""

    async def rollback_and_close() -> None:
        try:
            await conn.rollback()
        except Exception:  # the connection may be broken; closing is what matters
            pass
        finally:
            await conn.close()

    task = asyncio.ensure_future(rollback_and_close())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])  # finish the cleanup, then let the cancellation through
        raise
    except Exception:
        pass


def _short(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0][:300] if str(orig) else type(orig).__name__
