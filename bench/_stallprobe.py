"""Why the GUI thread was late: a sampler for bench/gui_responsiveness.py (``--probe``).

A watchdog thread wakes every ``EVERY_S``. Each wake it notes every thread's CPU time and
run-queue wait from ``/proc/self/task/TID/schedstat`` (nanoseconds on a CPU; nanoseconds
runnable but waiting for one); when the GUI thread's last timer tick is older than
``LATE_MS`` it also records the GUI thread's Python stack (``sys._current_frames``).
``gc.callbacks`` records every collection (generation, thread, duration).

For each gap over the goal the report then says, over the gap's interval: what each thread
did (on a CPU vs. waiting for one: the machine's load; a thread on a CPU holding the GIL
keeps the GUI thread off it even on an idle core), which collections ran, and where the GUI
thread's stack was in the samples taken while it was late (the innermost botdesk frames
first: the slot or coroutine step that ran long).

Every figure is measured, none inferred: a gap with the GUI thread on the CPU most of the
time is work on the GUI thread; one with it neither on the CPU nor waiting in the run queue
is the thread blocked (the GIL, or a lock); run-queue wait is the OS's.
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import threading
import time
import traceback
from typing import Any

EVERY_S = 0.003
LATE_MS = 20.0


def _schedstat(tid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as fh:
            run, wait, _n = fh.read().split()
        return int(run), int(wait)
    except OSError:
        return None


def _short(path: str) -> str:
    for mark in ("/src/botdesk/", "/site-packages/"):
        if mark in path:
            rest = path.split(mark, 1)[1]
            return ("botdesk/" + rest) if "botdesk" in mark else rest
    return os.path.basename(path)


def _thread_names() -> dict[int, str]:
    out = {}
    for t in threading.enumerate():
        if t.native_id is not None:
            out[t.native_id] = t.name
    for tid in os.listdir("/proc/self/task"):
        i = int(tid)
        if i not in out:
            try:
                with open(f"/proc/self/task/{tid}/comm") as fh:
                    out[i] = "(" + fh.read().strip() + ")"
            except OSError:
                pass
    return out


class StallProbe:
    def __init__(self, last_tick: Any) -> None:
        """``last_tick()`` is the perf_counter() of the GUI thread's last timer tick."""
        self.last_tick = last_tick
        self.main_ident = threading.main_thread().ident
        self.main_native = threading.main_thread().native_id
        self.samples: list[tuple[float, dict[int, tuple[int, int]], list[str] | None]] = []
        self.gcs: list[tuple[float, float, int, str, int]] = []  # start, end, gen, thread, n
        self._gc_start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.names: dict[int, str] = {}
        self.heap = ""

    # -- gc --------------------------------------------------------------------------

    def _gc_cb(self, phase: str, info: dict[str, Any]) -> None:
        tid = threading.get_native_id()
        if phase == "start":
            self._gc_start[tid] = time.perf_counter()
        else:
            t0 = self._gc_start.pop(tid, None)
            if t0 is not None:
                self.gcs.append(
                    (
                        t0,
                        time.perf_counter(),
                        info["generation"],
                        threading.current_thread().name,
                        info.get("collected", 0),
                    )
                )

    # -- the watchdog ----------------------------------------------------------------

    def _run(self) -> None:
        frames_of = sys._current_frames
        while not self._stop.is_set():
            now = time.perf_counter()
            tasks = {}
            for tid in os.listdir("/proc/self/task"):
                st = _schedstat(int(tid))
                if st is not None:
                    tasks[int(tid)] = st
            stack = None
            last = self.last_tick()
            if last and (now - last) * 1000 > LATE_MS:
                frame = frames_of().get(self.main_ident)
                if frame is not None:
                    stack = [
                        f"{_short(f.filename)}:{f.lineno} {f.name}"
                        for f in traceback.extract_stack(frame)
                    ]
            self.samples.append((now, tasks, stack))
            time.sleep(EVERY_S)

    def start(self) -> StallProbe:
        gc.callbacks.append(self._gc_cb)
        self._thread = threading.Thread(target=self._run, name="stall-probe", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.names = _thread_names()
        self.heap = (
            f"frozen {gc.get_freeze_count():,}, generations "
            + " / ".join(f"{len(gc.get_objects(g)):,}" for g in range(3))
            + f", thresholds {gc.get_threshold()}"
        )
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._gc_cb in gc.callbacks:
            gc.callbacks.remove(self._gc_cb)

    # -- the report ------------------------------------------------------------------

    def _at(self, t: float) -> int:
        """Index of the last sample at or before t."""
        lo, hi = 0, len(self.samples) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.samples[mid][0] <= t:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def explain(self, start: float, end: float) -> list[str]:
        if not self.samples:
            return ["(no samples)"]
        i0, i1 = self._at(start), self._at(end)
        a, b = self.samples[i0][1], self.samples[i1][1]
        span = max(1e-9, self.samples[i1][0] - self.samples[i0][0])
        lines = []
        per = []
        for tid, (run1, wait1) in b.items():
            run0, wait0 = a.get(tid, (run1, wait1))
            run, wait = (run1 - run0) / 1e6, (wait1 - wait0) / 1e6
            if run >= 1 or wait >= 1 or tid == self.main_native:
                name = "GUI" if tid == self.main_native else self.names.get(tid, str(tid))
                per.append((-run, f"{name}: cpu {run:.0f} ms, run-queue {wait:.0f} ms"))
        per.sort()
        lines.append(f"threads over {span * 1000:.0f} ms sampled: " + "; ".join(p for _k, p in per))
        gcs = [g for g in self.gcs if g[1] >= start and g[0] <= end]
        if gcs:
            lines.append(
                "gc: "
                + ", ".join(
                    f"gen{g[2]} {1000 * (g[1] - g[0]):.0f} ms on {g[3]}"
                    for g in gcs
                    if g[1] - g[0] > 0.002 or g[2] == 2
                )
            )
        stacks = [s for t, _tk, s in self.samples[i0 : i1 + 1] if s is not None and t >= start]
        if stacks:
            inner: collections.Counter[str] = collections.Counter()
            for s in stacks:
                mine = [f for f in s if f.startswith("botdesk/")]
                where = " < ".join(reversed(s[-3:]))
                inner[where + "  ||  " + " < ".join(reversed(mine[-3:]))] += 1
            for where, k in inner.most_common(3):
                lines.append(f"GUI stack x{k}/{len(stacks)}: {where}")
        return lines

    def gc_summary(self, start: float, end: float) -> str:
        by: collections.Counter[tuple[int, str]] = collections.Counter()
        worst: dict[tuple[int, str], float] = {}
        for g in self.gcs:
            if g[0] >= start and g[1] <= end:
                key = (g[2], g[3])
                by[key] += 1
                worst[key] = max(worst.get(key, 0.0), (g[1] - g[0]) * 1000)
        return ", ".join(
            f"gen{k[0]} on {k[1]}: {n} (max {worst[k]:.1f} ms)" for k, n in sorted(by.items())
        )
