"""A/B test statistics and the audience split: pure functions, no storage, no clock.

What an A/B decision is (DESIGN.md, "Engagement": statistics, not two percentages):

1. Omnibus test of homogeneity over the k variants (2-4), H0: every variant has the same rate.
   The statistic is Pearson's chi-square on the k x 2 table (df = k - 1, no continuity
   correction). Its p-value comes from the exact distribution under H0 conditional on the
   margins (Freeman-Halton, the k x 2 form of Fisher's exact test: the successes are a random
   subset of the recipients, a multivariate hypergeometric draw) whenever that distribution can
   be enumerated cheaply: always for two variants in practice, and for small tests of three or
   four. Exact conditional tests never exceed alpha, while the chi-square approximation runs
   slightly over it with two variants (5.2% measured at nominal 5%, bench/ab_simulation.py).
   Larger tables use the chi-square distribution when every expected count is at least 5
   (Cochran's rule), else a seeded Monte Carlo sample of the exact distribution
   (p = (1 + hits)/(1 + B), itself a valid p-value).
2. Only if the omnibus p-value is below alpha: the best variant (highest observed rate; ties
   go to the lower index) is declared the winner if Newcombe's hybrid score interval (Wilson
   intervals combined, Newcombe 1998 method 10) for ``rate(best) - rate(j)`` lies above 0 for
   every other variant j, each interval at the Bonferroni-adjusted level 1 - alpha / (k - 1).
   The interval reported is the one against the runner-up. Because the decision is the interval,
   a winner is never shown with an interval that contains 0.

Under the global null the omnibus gate alone bounds the false-winner rate by alpha; when some
variants differ and the best ties with another, the Bonferroni intervals (two-sided, so picking
the best after looking costs nothing extra) keep the error at or below alpha. bench/ab_simulation.py
measures both and the power. The test assumes independent recipients and ONE look at the data
after the window: deciding repeatedly while results come in ("peeking") inflates the error.

The audience split (``split_audience``) is seeded so that the same seed and audience give the
same groups; the caller records the seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Literal

from botdesk.errors import ValidationError

if TYPE_CHECKING:  # numpy is imported where it is used: `campaign run` and listings stay lean
    import numpy as np

DEFAULT_ALPHA = 0.05
MIN_VARIANTS = 2
MAX_VARIANTS = 4
# Cochran's rule for the chi-square approximation.
MIN_EXPECTED = 5.0
# The exact test is used whenever its enumeration has at most this many tables (always for two
# variants up to 20,000 successes or failures; small tests of three or four): a few ms of numpy.
MAX_EXACT_TABLES = 20_000
DEFAULT_MONTE_CARLO_DRAWS = 20_000
DEFAULT_SEED = 20_261_207
# Relative tolerance when comparing a table's statistic with the observed one (float noise
# must not drop the observed table itself from "at least as extreme").
_TIE_TOLERANCE = 1e-9

OmnibusMethod = Literal["chi-square", "exact", "exact-monte-carlo"]


@dataclass(frozen=True)
class Arm:
    """One variant's result: recipients (``trials``) and those who did the thing (``successes``)."""

    successes: int
    trials: int

    @property
    def rate(self) -> float:
        return self.successes / self.trials


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float  # e.g. 0.95

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Omnibus:
    method: OmnibusMethod
    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class _Comparison:
    best: int
    runner_up: int
    difference: float  # rate(best) - rate(runner_up)
    interval: Interval  # for that difference, at the Bonferroni-adjusted level
    omnibus: Omnibus
    rates: tuple[float, ...]


@dataclass(frozen=True)
class Winner(_Comparison):
    """``best`` beat every other variant; ``interval`` lies above 0."""


@dataclass(frozen=True)
class NoSignificantDifference(_Comparison):
    """The data do not single out a variant; best/runner_up are only the observed order."""


Decision = Winner | NoSignificantDifference


# --- distributions -----------------------------------------------------------------------


def regularized_gamma_q(s: float, x: float) -> float:
    """Q(s, x) = Gamma(s, x) / Gamma(s), the upper regularized incomplete gamma function.

    Series for x < s + 1, Lentz's continued fraction otherwise (Numerical Recipes 6.2); both
    converge to double precision within a few hundred terms for the arguments used here.
    """
    if s <= 0:
        raise ValueError("s must be positive")
    if x < 0:
        raise ValueError("x must be non-negative")
    if x == 0:
        return 1.0
    log_prefix = s * math.log(x) - x - math.lgamma(s)
    if x < s + 1:
        term = total = 1.0 / s
        a = s
        for _ in range(10_000):
            a += 1
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - s
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return min(1.0, math.exp(log_prefix) * h)


def chi_square_sf(statistic: float, df: int) -> float:
    """P(X >= statistic) for X ~ chi-square(df)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    return regularized_gamma_q(df / 2, max(0.0, statistic) / 2)


def wilson_interval(successes: int, trials: int, *, level: float) -> Interval:
    z = NormalDist().inv_cdf(0.5 + level / 2)
    n = trials
    center = (successes + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(successes * (n - successes) / n + z * z / 4)
    # At x = 0 (x = n) the bound is exactly 0 (1); float rounding would leave a tiny residue.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == n else min(1.0, center + half)
    return Interval(low, high, level)


def newcombe_interval(a: Arm, b: Arm, *, level: float) -> Interval:
    """Newcombe's hybrid score interval for rate(a) - rate(b) (1998, method 10)."""
    wa = wilson_interval(a.successes, a.trials, level=level)
    wb = wilson_interval(b.successes, b.trials, level=level)
    d = a.rate - b.rate
    low = d - math.sqrt((a.rate - wa.low) ** 2 + (wb.high - b.rate) ** 2)
    high = d + math.sqrt((wa.high - a.rate) ** 2 + (b.rate - wb.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high), level)


# --- the omnibus test --------------------------------------------------------------------


def _chi_square_statistics(successes: np.ndarray, trials: np.ndarray, total: int) -> np.ndarray:
    """Pearson's statistic of each row of ``successes`` (shape (T, k)) with fixed margins.

    For a k x 2 table the failure cells mirror the success cells, so the sum over both columns
    is sum((x - n p)^2 / (n p (1 - p))) with p the pooled rate.
    """
    import numpy as np

    n_all = int(trials.sum())
    p = total / n_all
    expected = trials * p
    return np.asarray(
        (((successes - expected) ** 2) / (expected * (1 - p))).sum(axis=-1), dtype=np.float64
    )


def _all_tables(trials: np.ndarray, m: int) -> np.ndarray:
    """Every vector x with 0 <= x_i <= trials_i and sum(x) = m, one per row."""
    import numpy as np

    tables = np.zeros((1, 0), dtype=np.int64)
    for n_i in trials[:-1]:
        r = np.arange(min(int(n_i), m) + 1, dtype=np.int64)
        grown = np.column_stack([np.repeat(tables, len(r), axis=0), np.tile(r, len(tables))])
        tables = grown[grown.sum(axis=1) <= m]
    last = m - tables.sum(axis=1)
    keep = (last >= 0) & (last <= int(trials[-1]))
    return np.column_stack([tables[keep], last[keep]])


def _table_count_bound(k: int, m: int) -> int:
    return math.comb(m + k - 1, k - 1)


def homogeneity_test(
    arms: Sequence[Arm],
    *,
    seed: int = DEFAULT_SEED,
    draws: int = DEFAULT_MONTE_CARLO_DRAWS,
    max_exact_tables: int = MAX_EXACT_TABLES,
) -> Omnibus:
    """Pearson's statistic referred to its exact conditional distribution when that is cheap,
    to the chi-square distribution when every expected count is at least 5, else to a seeded
    Monte Carlo sample of the exact distribution."""
    import numpy as np

    _validate(arms)
    k = len(arms)
    trials = np.array([a.trials for a in arms], dtype=np.int64)
    x = np.array([a.successes for a in arms], dtype=np.int64)
    total, n_all = int(x.sum()), int(trials.sum())
    if total in (0, n_all):
        # Every recipient behaved the same: nothing distinguishes the variants.
        return Omnibus("chi-square", 0.0, k - 1, 1.0)
    observed = float(_chi_square_statistics(x, trials, total))
    # The statistic is symmetric in successes/failures: enumerate the smaller column.
    if n_all - total < total:
        x, total = trials - x, n_all - total
    threshold = observed * (1 - _TIE_TOLERANCE) - 1e-12
    if _table_count_bound(k, total) <= max_exact_tables:
        tables = _all_tables(trials, total)
        log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n_all + 1)))])

        def log_comb(n: np.ndarray, r: np.ndarray) -> np.ndarray:
            return np.asarray(log_fact[n] - log_fact[r] - log_fact[n - r])

        log_p = log_comb(trials, tables).sum(axis=1) - log_comb(np.array(n_all), np.array(total))
        stats = _chi_square_statistics(tables, trials, total)
        p = float(np.exp(log_p[stats >= threshold]).sum())
        return Omnibus("exact", observed, k - 1, min(1.0, p))
    if total * int(trials.min()) / n_all >= MIN_EXPECTED:
        return Omnibus("chi-square", observed, k - 1, chi_square_sf(observed, k - 1))
    rng = np.random.default_rng(seed)
    sample = rng.multivariate_hypergeometric(trials, total, size=draws)
    hits = int((_chi_square_statistics(sample, trials, total) >= threshold).sum())
    return Omnibus("exact-monte-carlo", observed, k - 1, (1 + hits) / (1 + draws))


# --- the decision ------------------------------------------------------------------------


def decide(
    arms: Sequence[Arm], *, alpha: float = DEFAULT_ALPHA, seed: int = DEFAULT_SEED
) -> Decision:
    """Winner (difference to the runner-up and its interval) or no significant difference."""
    if not 0 < alpha < 0.5:
        raise ValidationError(f"alpha must be between 0 and 0.5, got {alpha}")
    omnibus = homogeneity_test(arms, seed=seed)
    k = len(arms)
    order = sorted(range(k), key=lambda i: (-arms[i].rate, i))
    best, runner_up = order[0], order[1]
    level = 1 - alpha / (k - 1)
    intervals = {j: newcombe_interval(arms[best], arms[j], level=level) for j in order[1:]}
    rates = tuple(a.rate for a in arms)
    difference = rates[best] - rates[runner_up]
    if omnibus.p_value < alpha and all(iv.low > 0 for iv in intervals.values()):
        return Winner(best, runner_up, difference, intervals[runner_up], omnibus, rates)
    return NoSignificantDifference(
        best, runner_up, difference, intervals[runner_up], omnibus, rates
    )


def _validate(arms: Sequence[Arm]) -> None:
    if not MIN_VARIANTS <= len(arms) <= MAX_VARIANTS:
        raise ValidationError(
            f"an A/B test needs {MIN_VARIANTS}-{MAX_VARIANTS} variants, got {len(arms)}"
        )
    for i, a in enumerate(arms):
        if a.trials <= 0:
            raise ValidationError(f"variant {i + 1} has no recipients")
        if not 0 <= a.successes <= a.trials:
            raise ValidationError(
                f"variant {i + 1}: {a.successes} successes out of {a.trials} recipients"
            )


# --- the audience split ------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Test groups (one per variant, sizes within 1 of each other) and the holdout."""

    seed: int
    test_share: float
    groups: tuple[tuple[int, ...], ...]
    holdout: tuple[int, ...]


def split_audience(
    recipients: Sequence[int], *, variants: int, test_share: float, seed: int
) -> Split:
    """Pick round(test_share * N) recipients at random (seeded) and deal them to the variants.

    The input order does not matter (ids are sorted first), so the same audience and seed give
    the same split wherever it is computed.
    """
    import numpy as np

    if not MIN_VARIANTS <= variants <= MAX_VARIANTS:
        raise ValidationError(
            f"an A/B test needs {MIN_VARIANTS}-{MAX_VARIANTS} variants, got {variants}"
        )
    if not 0 < test_share <= 1:
        raise ValidationError(f"the test share must be in (0, 1], got {test_share}")
    ids = np.unique(np.asarray(recipients, dtype=np.int64))
    if len(ids) != len(recipients):
        raise ValidationError("the audience lists a recipient twice")
    size = round(test_share * len(ids))
    if size < variants:
        raise ValidationError(
            f"a test share of {test_share:g} of {len(ids)} recipients is {size}, "
            f"fewer than one per variant ({variants})"
        )
    order = np.random.default_rng(seed).permutation(len(ids))
    test, rest = order[:size], order[size:]
    groups = tuple(tuple(int(v) for v in np.sort(ids[test[j::variants]])) for j in range(variants))
    holdout = tuple(int(v) for v in np.sort(ids[rest]))
    return Split(seed, test_share, groups, holdout)
