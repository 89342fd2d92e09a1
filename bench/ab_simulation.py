"""The A/B decision's error rates, by simulation with known true rates (seeded).

    PYTHONPATH=src .venv/bin/python bench/ab_simulation.py [--reps 4000] [--seed 1]

Every replication draws each variant's successes from Binomial(n, true rate) and runs
``botdesk.abtest.decide`` (alpha 0.05) on them, exactly as ``campaign decide`` does.

- false winners, equal variants: 2, 3 and 4 variants at base rates 2%, 10%, 30% and 200, 1,000
  and 5,000 recipients per variant; any winner is false. Goal: at most 5%. The last column is
  the 95% Wilson upper bound of that rate over the replications.
- false winners, tied leaders: two variants share the best rate and the others are clearly
  worse; naming either leader is a false winner (the omnibus test rejects correctly here, so
  the gate alone does not protect: the Bonferroni intervals must).
- power: one variant at 13%, the others at 10%, 2,000 recipients per variant (and 1,000/5,000
  for the curve): how often that variant is declared the winner (a wrong variant named is
  counted separately).
- peeking: what deciding 10 times during the window and stopping at the first "winner" would
  do to the false-winner rate of 2 equal variants at 10%, n = 2,000 per variant at the end.
  botdesk decides once, after the window.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np
from _common import banner

from botdesk.abtest import Arm, Winner, decide, wilson_interval

ALPHA = 0.05


def decide_counts(successes: Sequence[int], trials: Sequence[int]) -> int | None:
    """The winning variant's index, or None."""
    d = decide([Arm(int(s), int(n)) for s, n in zip(successes, trials, strict=True)], alpha=ALPHA)
    return d.best if isinstance(d, Winner) else None


def upper95(hits: int, reps: int) -> float:
    return wilson_interval(hits, reps, level=0.95).high


def false_winner_equal(rng: np.random.Generator, reps: int) -> None:
    print("\nfalse winners, all variants equal (goal <= 5%)")
    print(f"{'variants':>8} {'base':>5} {'n/arm':>6} {'false winners':>14} {'95% upper':>10}")
    worst = 0.0
    for k in (2, 3, 4):
        for base in (0.02, 0.10, 0.30):
            for n in (200, 1000, 5000):
                draws = rng.binomial(n, base, size=(reps, k))
                hits = sum(decide_counts(row, [n] * k) is not None for row in draws)
                worst = max(worst, hits / reps)
                print(
                    f"{k:>8} {base:>5.0%} {n:>6} {hits / reps:>14.2%} {upper95(hits, reps):>10.2%}"
                )
    print(f"worst observed false-winner rate: {worst:.2%}")


def false_winner_tied(rng: np.random.Generator, reps: int) -> None:
    print("\nfalse winners, two tied leaders, the others clearly worse (goal <= 5%)")
    print(f"{'true rates':>22} {'n/arm':>6} {'omnibus rejects':>16} {'false winners':>14}")
    for rates in ((0.10, 0.10, 0.07), (0.10, 0.10, 0.07, 0.07), (0.30, 0.30, 0.25, 0.20)):
        for n in (1000, 5000):
            draws = rng.binomial(n, rates, size=(reps, len(rates)))
            hits = rejects = 0
            for row in draws:
                d = decide([Arm(int(s), n) for s in row], alpha=ALPHA)
                rejects += d.omnibus.p_value < ALPHA
                hits += isinstance(d, Winner)
            label = "/".join(f"{r:.0%}" for r in rates)
            print(f"{label:>22} {n:>6} {rejects / reps:>16.1%} {hits / reps:>14.2%}")


def power(rng: np.random.Generator, reps: int) -> None:
    print("\npower: one variant at 13%, the others at 10% (alpha 0.05)")
    print(f"{'variants':>8} {'n/arm':>6} {'right winner':>13} {'wrong winner':>13}")
    for k in (2, 3, 4):
        rates = [0.13] + [0.10] * (k - 1)
        for n in (1000, 2000, 5000):
            draws = rng.binomial(n, rates, size=(reps, k))
            right = wrong = 0
            for row in draws:
                w = decide_counts(row, [n] * k)
                right += w == 0
                wrong += w is not None and w != 0
            print(f"{k:>8} {n:>6} {right / reps:>13.1%} {wrong / reps:>13.2%}")


def peeking(rng: np.random.Generator, reps: int) -> None:
    looks, n, base = 10, 2000, 0.10
    step = n // looks
    once = early = 0
    for _ in range(reps):
        chunks = rng.binomial(step, base, size=(looks, 2)).cumsum(axis=0)
        once += decide_counts(chunks[-1], [n, n]) is not None
        early += any(
            decide_counts(chunks[i], [step * (i + 1)] * 2) is not None for i in range(looks)
        )
    print(f"\npeeking: 2 equal variants at {base:.0%}, {n} per variant at the end")
    print(f"  decided once after the window:          {once / reps:.2%} false winners")
    print(f"  decided at {looks} looks, first winner kept: {early / reps:.2%} false winners")


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv[1:])
    banner(argv)
    print(f"replications per row: {args.reps}, seed {args.seed}")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    false_winner_equal(rng, args.reps)
    false_winner_tied(rng, args.reps)
    power(rng, args.reps)
    peeking(rng, min(args.reps, 2000))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(sys.argv)
