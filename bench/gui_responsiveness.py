"""Desktop console responsiveness: GUI-thread stalls under load, a million-row scroll, start-up.

    .venv/bin/python bench/gui_responsiveness.py [--subscribers 1000000] [--recipients 10000]
        [--step 60] [--quick] [--only dashboard,campaign,scroll]

Everything runs in this one process, as the console does: a QApplication (offscreen) with
qasync's asyncio loop on it, the services as coroutines on that loop. A GUI-thread stall is
measured with a ``QTimer`` at 10 ms (a precise timer) on the GUI thread: every tick records
``time.perf_counter()``, and a gap between consecutive ticks longer than the interval is time
the thread could not run its events. Goal: no gap over 50 ms.

1. Start-up (first, so the GUI modules are imported cold): the demo home is prepared (its
   sandbox in-process), then the clock runs from just before ``console(home, serve=True)``
   is entered until the dashboard shows its first data (``DashboardView._show`` has run and
   the bots table has rows). Process start -> QApplication is reported beside it; botdesk's
   core modules were imported while preparing the demo, their import time is reported too.
   Goal: < 2 s.
2. A paid campaign: the sandbox in its own process (``bench/_common.py``; paid broadcasts up
   to 1000 msg/s, 30-120 ms latency, Stars enough), ``--recipients`` subscribers seeded
   straight into the store, the console opened serving (its runtime delivers in this
   process, on the GUI thread's loop) with the campaigns screen open. The campaign is created
   and started through ``services.create_campaign(spec, start=True)`` and its detail opened
   (what the Send button leads to: progress refreshed every second, recipients every five).
   The rate is the campaign's own: sent / (finished_at - started_at); the sandbox's record
   (first to last accepted) is beside it.
3. ``--subscribers`` rows inserted inside SQLite (``snapshot_million.seed``), the console
   opened without serving, the subscribers screen open: the table is scrolled from the top
   to the bottom ``--step`` rows at a time (a fast wheel: 60 rows a notch), each step waiting
   until every visible row is loaded before the next; no 16 ms pacing, so it asks more of
   the GUI per second than a hand does. Then jumps (the scroll bar dragged straight to the
   top, the middle and the end): time until the visible rows are loaded.
"""

from __future__ import annotations

import time

T_SCRIPT = time.perf_counter()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from _common import (  # noqa: E402
    SandboxProcess,
    banner,
    rate_of,
    register_bot,
    seed_subscribers,
    token_for,
)
from _stallprobe import StallProbe  # noqa: E402

GAP_GOAL_MS = 50.0
TICK_MS = 10
START_GOAL_S = 2.0
PAID_LIMIT = 1000.0
BOT = "paid_bot"
TEXT = "Flash sale for {first_name}: 30% off for the next hour."
QUICK_TOML = "[assistant]\nembeddings = false\n"


def process_age() -> float:
    """Seconds since this process started (kernel's start time, 10 ms resolution)."""
    with open("/proc/self/stat") as fh:
        start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def gc_counts(since: tuple[int, ...] = (0, 0, 0)) -> tuple[int, ...]:
    """Collections per generation so far (all threads), less ``since``."""
    return tuple(g["collections"] - s for g, s in zip(gc.get_stats(), since, strict=True))


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class GapMeter:
    """A 10 ms QTimer on the GUI thread; the gaps between its ticks."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.ends: list[float] = []  # perf_counter() at the end of each gap
        self._last = 0.0

    def _tick(self) -> None:
        t = time.perf_counter()
        if self._last:
            self.gaps.append((t - self._last) * 1000)
            self.ends.append(t)
        self._last = t

    def start(self) -> GapMeter:
        self.gaps.clear()
        self.ends.clear()
        self._last = 0.0
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.stop()

    def mark(self) -> int:
        return len(self.gaps)

    def summary(self, since: int = 0) -> tuple[float, float, int, int]:
        """(max ms, p99 ms, gaps over the goal, ticks)."""
        g = sorted(self.gaps[since:])
        if not g:
            return 0.0, 0.0, 0, 0
        p99 = g[min(len(g) - 1, int(0.99 * len(g)))]
        return g[-1], p99, sum(x > GAP_GOAL_MS for x in g), len(g)

    def worst(self, since: int, origin: float, k: int = 5) -> str:
        """The k longest gaps and when each began, in s after ``origin``."""
        ix = sorted(range(since, len(self.gaps)), key=lambda i: -self.gaps[i])[:k]
        return ", ".join(
            f"{self.gaps[i]:.0f} ms at +{self.ends[i] - self.gaps[i] / 1000 - origin:.2f} s"
            for i in sorted(ix)
        )

    def line(self, what: str, since: int = 0) -> tuple[str, bool]:
        mx, p99, over, n = self.summary(since)
        ok = mx <= GAP_GOAL_MS
        return (
            f"{what}: max gap {mx:.1f} ms, p99 {p99:.1f} ms, {over} gap(s) > {GAP_GOAL_MS:g} ms "
            f"of {n} ticks at {TICK_MS} ms -- goal max <= {GAP_GOAL_MS:g} ms: "
            f"{'MET' if ok else 'NOT MET'}"
        ), ok


@contextlib.contextmanager
def temp_home(prefix: str) -> Any:
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


# -- 1. time to a usable dashboard --------------------------------------------------------


async def bench_startup(t_qapp: float, verdicts: list[bool]) -> None:
    t0 = time.perf_counter()
    from botdesk.runtime.demo_home import demo_home
    from botdesk.sandbox.testing import until

    t_core = time.perf_counter() - t0
    print("\n[start-up] preparing the demo home (sandbox in-process)...", flush=True)
    async with demo_home() as home:
        from botdesk.gui.views.dashboard import DashboardView

        shown: list[float] = []
        original = DashboardView._show

        def spy(self: Any, d: Any) -> None:
            original(self, d)
            if not shown and self.bots.rowCount() > 0:
                shown.append(time.perf_counter())

        DashboardView._show = spy  # type: ignore[method-assign]
        try:
            from botdesk.gui.app import console

            t_enter = time.perf_counter()
            async with console(home, serve=True) as window:
                t_ready = time.perf_counter()
                window.show()
                await until(lambda: shown, within=30, what="dashboard data", every=0.01)
                t_data = shown[0]
                await window.ctx.bridge.drain()
        finally:
            DashboardView._show = original  # type: ignore[method-assign]
    usable = max(t_data, t_ready) - t_enter
    print(f"process start -> QApplication ready: {t_qapp:.2f} s (interpreter, imports, Qt)")
    print(f"botdesk core import (demo_home and below): {t_core:.2f} s")
    print(f"console() entered -> runtime started, window yielded: {t_ready - t_enter:.2f} s")
    print(f"console() entered -> dashboard's first data (bots table has rows): "
          f"{t_data - t_enter:.2f} s")  # fmt: skip
    ok = usable < START_GOAL_S
    verdicts.append(ok)
    print(f"time to usable dashboard (both of the above): {usable:.2f} s -- goal < "
          f"{START_GOAL_S:g} s: {'MET' if ok else 'NOT MET'}")  # fmt: skip
    print(f"cold start estimate without the demo preparation (process -> QApplication + core "
          f"import + usable): {t_qapp + t_core + usable:.2f} s")  # fmt: skip


# -- 2. a paid campaign delivered in the GUI's process ------------------------------------


async def bench_campaign(args: argparse.Namespace, verdicts: list[bool]) -> None:
    from botdesk.app import open_app
    from botdesk.campaigns import CampaignSpec
    from botdesk.gui.app import console
    from botdesk.gui.views.campaigns import CampaignsView
    from botdesk.sandbox.testing import until

    n = args.recipients
    token = token_for(60)
    print(f"\n[campaign] sandbox process, {n:,} users, seeding...", flush=True)
    async with SandboxProcess(
        bots=[(BOT, token)], latency=(0.03, 0.12), paid_rate=PAID_LIMIT, star_balance=n, seed=7
    ) as sb:
        chats = await sb.add_users(n, BOT)
        await sb.forget_updates(token)  # they joined long ago: no welcome is due
        with temp_home("bench-gui-campaign-") as home:
            (home / "botdesk.toml").write_text(
                QUICK_TOML + "[network]\nconnect_timeout = 5.0\nread_timeout = 10.0\n"
            )
            async with open_app(home, configure_logs=False) as app:
                bot = await register_bot(app, "paid", token, sb.base)
                await seed_subscribers(app, bot.id, chats)
            async with console(home, serve=True) as window:
                window.show()
                view = window.open_screen(CampaignsView)
                await asyncio.sleep(1.5)  # the screen settles: bots, list, first refreshes
                services = window.ctx.services
                meter = GapMeter().start()
                probe = StallProbe(lambda: meter._last).start() if args.probe else None
                await asyncio.sleep(0.5)
                idle = meter.mark()
                cpu0, gc0 = time.thread_time(), gc_counts()
                spec = CampaignSpec(bot="paid", text=TEXT, paid=True, name="bench paid")
                t_create = time.perf_counter()
                info = await services.create_campaign(spec, start=True)
                t_created = time.perf_counter() - t_create
                view.created(info)  # as after Send: the list reloads, the detail opens
                print(f"[campaign] {info.id} started, audience {info.audience:,}", flush=True)

                async def done() -> bool:
                    got = await services.campaigns.get(info.id)
                    return got.state in ("completed", "cancelled", "failed")

                await until(done, within=n / 200 + 60, what="campaign finished", every=0.25)
                await asyncio.sleep(1.0)  # the detail's last refresh (report, recipients)
                meter.stop()
                gui_cpu, gcs = time.thread_time() - cpu0, gc_counts(gc0)
                if probe is not None:
                    probe.stop()
                final = await services.campaigns.get(info.id)
                status = await services.campaign_status(info.id)
                await window.ctx.bridge.drain()
        times = await sb.arrivals(BOT)
        st = await sb.bot_stats(BOT)
    assert final.started_at is not None and final.finished_at is not None
    span = (final.finished_at - final.started_at).total_seconds()
    sent = int(status.get("sent", 0))
    idle_gaps = sorted(meter.gaps[:idle])
    print(
        f"delivered (campaign's counts): sent {sent:,} of {final.audience:,}; "
        + ", ".join(f"{k} {status[k]}" for k in ("failed", "uncertain") if k in status)
    )
    print(f"achieved rate (campaign's own: sent / (finished_at - started_at) = {span:.2f} s): "
          f"{sent / span if span > 0 else 0:,.1f} msg/s; sandbox record first to last "
          f"accepted: {rate_of(times):,.1f} msg/s; 429s {st['rate_limited']}")  # fmt: skip
    if idle_gaps:
        print(f"before the campaign (screen open, idle): max gap {idle_gaps[-1]:.1f} ms")
    print(f"create + start (validate, snapshot of the audience) took {t_created:.2f} s; longest "
          f"gaps: {meter.worst(idle, t_create)}")  # fmt: skip
    run_s = meter.ends[-1] - t_create
    print(f"GUI thread's own CPU time during the campaign: {gui_cpu:.2f} s of {run_s:.1f} s "
          f"({100 * gui_cpu / run_s:.0f}%); garbage collections in the process (generations "
          f"0/1/2): {gcs[0]}/{gcs[1]}/{gcs[2]}")  # fmt: skip
    text, ok = meter.line("GUI thread during the campaign (create, start, deliver)", idle)
    verdicts.append(ok)
    print(text)
    if probe is not None:
        report_probe(probe, meter, idle, t_create)


def report_probe(probe: StallProbe, meter: GapMeter, since: int, origin: float) -> None:
    """Each gap over the goal, explained by the probe's samples (``--probe``)."""
    print(f"[probe] tracked objects at the end: {probe.heap}")
    print(f"[probe] garbage collections during the run: "
          f"{probe.gc_summary(origin, meter.ends[-1]) or 'none'}")  # fmt: skip
    for i in range(since, len(meter.gaps)):
        if meter.gaps[i] > GAP_GOAL_MS:
            end = meter.ends[i]
            start = end - meter.gaps[i] / 1000
            print(f"[probe] gap {meter.gaps[i]:.0f} ms at +{start - origin:.2f} s")
            for line in probe.explain(start, end):
                print(f"    {line}")


# -- 3. a million rows scrolled ------------------------------------------------------------


def visible_rows(table: Any) -> tuple[int, int]:
    vp = table.viewport()
    first = table.rowAt(0)
    last = table.rowAt(vp.height() - 1)
    model = table.model()
    if last < 0:
        last = model.rowCount() - 1
    return max(0, first), last


def visible_loaded(table: Any) -> bool:
    model = table.model()
    first, last = visible_rows(table)
    size = model.page_size
    return all(p in model.pages for p in range(first // size, last // size + 1))


async def bench_scroll(args: argparse.Namespace, verdicts: list[bool]) -> None:
    from snapshot_million import seed

    from botdesk.app import open_app
    from botdesk.gui.app import console
    from botdesk.gui.views.subscribers import SubscribersView
    from botdesk.sandbox.testing import until

    n = args.subscribers
    with temp_home("bench-gui-scroll-") as home:
        (home / "botdesk.toml").write_text(QUICK_TOML)
        t0 = time.perf_counter()
        async with open_app(home, configure_logs=False) as app:
            await seed(app, n)
        print(f"\n[scroll] {n:,} subscribers inserted in {time.perf_counter() - t0:.1f} s; "
              f"RSS {rss_mb():.0f} MB", flush=True)  # fmt: skip
        async with console(home, serve=False) as window:
            window.show()
            meter = GapMeter().start()
            t_open = time.perf_counter()
            view = window.open_screen(SubscribersView)
            await until(
                lambda: view.model is not None and view.model.total == n and visible_loaded(
                    view.table), within=60, what="first page", every=0.01
            )  # fmt: skip
            t_first = time.perf_counter() - t_open
            text, ok_open = meter.line("GUI thread while the screen opened (COUNT, first page)")
            print(f"subscribers screen opened -> first page shown: {t_first * 1000:.0f} ms")
            print(text)
            table, model = view.table, view.model
            assert model is not None
            bar = table.verticalScrollBar()
            await asyncio.sleep(0.2)
            top = bar.maximum()
            print(f"scroll bar range 0..{top:,} (one value = one row; {table.viewport().height()}"
                  f" px viewport, {visible_rows(table)[1] - visible_rows(table)[0] + 1} rows "
                  f"visible); RSS {rss_mb():.0f} MB", flush=True)  # fmt: skip
            f0, s0 = model.fetches, model.skipped_reads
            held_max = 0
            mark = meter.mark()
            t0 = time.perf_counter()
            value, steps = 0, 0
            while value < top:
                value = min(top, value + args.step)
                bar.setValue(value)
                steps += 1
                await asyncio.sleep(0)
                await until(
                    lambda: visible_loaded(table), within=60, what="visible rows", every=0.001
                )
                held_max = max(held_max, model.held_rows())
            t_scroll = time.perf_counter() - t0
            await asyncio.sleep(0.1)
            _first, last = visible_rows(table)
            print(f"top -> bottom in {steps:,} steps of {args.step} rows: {t_scroll:.1f} s "
                  f"({steps / t_scroll:,.0f} steps/s, {top / t_scroll:,.0f} rows/s); last "
                  f"visible row {last + 1:,} of {n:,}")  # fmt: skip
            print(f"model: {model.fetches - f0} page reads ({model.skipped_reads - s0} with a "
                  f"skip), at most {held_max:,} rows held (max_pages {model.max_pages} x "
                  f"{model.page_size}); RSS {rss_mb():.0f} MB, "
                  f"peak {rss_mb('VmHWM'):.0f} MB")  # fmt: skip
            text, ok_scroll = meter.line("GUI thread while scrolling", mark)
            print(text)
            jumps_ok = True
            for label, target in (("top", 0), ("middle", top // 2), ("end", top)):
                mark = meter.mark()
                f0, s0 = model.fetches, model.skipped_reads
                t0 = time.perf_counter()
                bar.setValue(target)
                await asyncio.sleep(0)
                await until(
                    lambda: visible_loaded(table), within=60, what=f"jump to {label}", every=0.001
                )
                dt = time.perf_counter() - t0
                await asyncio.sleep(0.05)
                mx, _p99, _over, _n = meter.summary(mark)
                jumps_ok = jumps_ok and mx <= GAP_GOAL_MS
                print(f"jump to the {label} (row {target + 1:,}): visible rows loaded in "
                      f"{dt * 1000:.0f} ms ({model.fetches - f0} read(s), "
                      f"{model.skipped_reads - s0} skipping); max GUI gap {mx:.1f} ms")  # fmt: skip
            meter.stop()
            print(f"model after all: {model.fetches} reads in total, {model.skipped_reads} with "
                  f"a skip, {model.held_rows():,} rows held; RSS {rss_mb():.0f} MB")  # fmt: skip
            await window.ctx.bridge.drain()
    verdicts.extend([ok_open, ok_scroll, jumps_ok])


async def main_async(args: argparse.Namespace, t_qapp: float) -> None:
    verdicts: list[bool] = []
    parts = set(args.only.split(","))
    if "dashboard" in parts:
        await bench_startup(t_qapp, verdicts)
    if "campaign" in parts:
        await bench_campaign(args, verdicts)
    if "scroll" in parts:
        await bench_scroll(args, verdicts)
    print(f"\nload average: {os.getloadavg()[0]:.2f} (2 cores shared); "
          f"every goal {'MET' if all(verdicts) else 'NOT MET'}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1_000_000)
    ap.add_argument("--recipients", type=int, default=10_000)
    ap.add_argument("--step", type=int, default=60, help="rows per scroll step (a fast wheel)")
    ap.add_argument("--only", default="dashboard,campaign,scroll")
    ap.add_argument("--probe", action="store_true",
                    help="explain each campaign gap over 50 ms (bench/_stallprobe.py)")  # fmt: skip
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 20,000 subscribers, 1,000 recipients")  # fmt: skip
    args = ap.parse_args()
    if args.quick:
        args.subscribers, args.recipients = 20_000, 1_000
    banner(sys.argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["BOTDESK_KEYRING"] = "off"
    import qasync
    from PySide6.QtWidgets import QApplication

    qapp = QApplication.instance() or QApplication(["botdesk"])
    qapp.setQuitOnLastWindowClosed(False)
    t_qapp = process_age()
    print(f"script start -> QApplication: {time.perf_counter() - T_SCRIPT:.2f} s", flush=True)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    try:
        with loop:
            loop.run_until_complete(main_async(args, t_qapp))
    finally:
        asyncio.set_event_loop(None)
    # Temp homes and the sandbox process are gone by now; skip the interpreter's teardown,
    # where PySide6's garbage collection of the closed window aborted ("bool_dealloc").
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
