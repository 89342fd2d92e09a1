"""The A/B statistics against published answers (tables, textbooks, R's documented examples)."""

from __future__ import annotations

import math

import pytest

from botdesk.abtest import (
    Arm,
    NoSignificantDifference,
    Winner,
    chi_square_sf,
    decide,
    homogeneity_test,
    newcombe_interval,
    regularized_gamma_q,
    wilson_interval,
)
from botdesk.errors import ValidationError


# Critical values of the chi-square distribution as printed in standard tables
# (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.4), upper-tail probability in the last column.
@pytest.mark.parametrize(
    ("statistic", "df", "p"),
    [
        (3.841, 1, 0.05),
        (6.635, 1, 0.01),
        (10.828, 1, 0.001),
        (5.991, 2, 0.05),
        (9.210, 2, 0.01),
        (7.815, 3, 0.05),
        (11.345, 3, 0.01),
        (18.307, 10, 0.05),
        (0.016, 1, 0.90),
        (0.211, 2, 0.90),
        (0.584, 3, 0.90),
    ],
)
def test_chi_square_tail_matches_table(statistic: float, df: int, p: float) -> None:
    # Tables print three decimals of the statistic; 0.3% of p covers that rounding.
    assert chi_square_sf(statistic, df) == pytest.approx(p, rel=3e-3)


@pytest.mark.parametrize("x", [0.01, 0.3, 1.0, 2.5, 4.0, 7.9, 15.0, 40.0])
def test_chi_square_tail_matches_closed_forms(x: float) -> None:
    # df 1, 2, 3 have closed forms; they exercise both the series and the continued fraction.
    assert chi_square_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-12)
    assert chi_square_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-12)
    df3 = math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    assert chi_square_sf(x, 3) == pytest.approx(df3, rel=1e-10)


def test_incomplete_gamma_edges() -> None:
    assert regularized_gamma_q(2.0, 0.0) == 1.0
    # Q(1, x) = exp(-x)
    assert regularized_gamma_q(1.0, 3.0) == pytest.approx(math.exp(-3.0), rel=1e-13)
    with pytest.raises(ValueError):
        regularized_gamma_q(0.0, 1.0)


def test_four_proportions_match_r_prop_test() -> None:
    # R's ?prop.test example (Fleiss 1981): smokers among patients in four groups;
    # R prints X-squared = 12.6, df = 3, p-value = 0.005585. Exact enumeration is switched
    # off so that the chi-square distribution is used.
    arms = [Arm(83, 86), Arm(90, 93), Arm(129, 136), Arm(70, 82)]
    result = homogeneity_test(arms, max_exact_tables=0)
    assert result.method == "chi-square"
    assert result.df == 3
    assert result.statistic == pytest.approx(12.6, abs=0.005)
    assert result.p_value == pytest.approx(0.005585, abs=5e-7)
    # By default this small table (27 failures) is enumerated: same statistic, exact p-value,
    # close to the approximation here.
    exact = homogeneity_test(arms)
    assert exact.method == "exact"
    assert exact.statistic == result.statistic
    assert exact.p_value == pytest.approx(result.p_value, rel=0.5)


def test_exact_and_chi_square_agree_at_large_counts() -> None:
    # 2 variants, 10,000 each: the enumerated exact p is close to the chi-square p, and a
    # little larger (0.0672 vs 0.0639): the discreteness that makes it never exceed alpha.
    arms = [Arm(1000, 10_000), Arm(1080, 10_000)]
    exact = homogeneity_test(arms)
    approx = homogeneity_test(arms, max_exact_tables=0)
    assert (exact.method, approx.method) == ("exact", "chi-square")
    assert approx.p_value < exact.p_value < approx.p_value * 1.1


def test_small_counts_use_the_exact_test_lady_tasting_tea() -> None:
    # Fisher's tea-tasting experiment: 3 of 4 vs 1 of 4, two-sided exact p = 34/70 = 0.4857.
    result = homogeneity_test([Arm(3, 4), Arm(1, 4)])
    assert result.method == "exact"
    assert result.p_value == pytest.approx(34 / 70, rel=1e-12)


def test_exact_test_agrees_with_monte_carlo_and_uses_the_smaller_column() -> None:
    # Near-100% rates: the failures column is the small one, enumerated instead of successes.
    arms = [Arm(28, 30), Arm(30, 30), Arm(25, 30)]
    exact = homogeneity_test(arms)
    assert exact.method == "exact"
    # Monte Carlo is used for small expected counts whose enumeration is too big; forced here.
    sampled = homogeneity_test(arms, max_exact_tables=0, draws=40_000, seed=7)
    assert sampled.method == "exact-monte-carlo"
    # 40,000 draws: the standard error of the sampled p is below 0.0025.
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.01)
    assert homogeneity_test(arms, max_exact_tables=0, seed=7) == homogeneity_test(
        arms, max_exact_tables=0, seed=7
    )


def test_everyone_the_same_is_no_evidence() -> None:
    assert homogeneity_test([Arm(0, 50), Arm(0, 50)]).p_value == 1.0
    assert homogeneity_test([Arm(50, 50), Arm(40, 40), Arm(9, 9)]).p_value == 1.0


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
        (Arm(56, 70), Arm(48, 80), 0.0524, 0.3339),
        (Arm(9, 10), Arm(3, 10), 0.1705, 0.8090),
        (Arm(0, 10), Arm(0, 10), -0.2775, 0.2775),
    ],
)
def test_newcombe_interval_matches_published(a: Arm, b: Arm, low: float, high: float) -> None:
    iv = newcombe_interval(a, b, level=0.95)
    assert iv.low == pytest.approx(low, abs=1e-4)
    assert iv.high == pytest.approx(high, abs=1e-4)


def test_wilson_interval_of_zero_successes() -> None:
    # Upper bound z^2 / (n + z^2) for x = 0: 3.8415 / 13.8415.
    iv = wilson_interval(0, 10, level=0.95)
    assert iv.low == 0.0
    assert iv.high == pytest.approx(0.27753, abs=1e-5)


def test_clear_difference_is_a_winner_with_interval_above_zero() -> None:
    decision = decide([Arm(100, 1000), Arm(150, 1000)])
    assert isinstance(decision, Winner)
    assert decision.best == 1 and decision.runner_up == 0
    assert decision.difference == pytest.approx(0.05)
    assert decision.interval.low > 0 and decision.interval.contains(0.05)
    assert decision.omnibus.p_value < 0.001


def test_noise_is_no_significant_difference_with_its_interval() -> None:
    decision = decide([Arm(100, 1000), Arm(108, 1000), Arm(97, 1000)])
    assert isinstance(decision, NoSignificantDifference)
    assert decision.best == 1
    assert decision.interval.contains(0.0)
    assert decision.interval.level == pytest.approx(1 - 0.05 / 2)


def test_significant_omnibus_but_tied_leaders_is_no_winner() -> None:
    # The third variant is clearly worse (the omnibus rejects), but nothing separates the
    # first two: naming one of them the winner would be picking noise.
    decision = decide([Arm(200, 1000), Arm(200, 1000), Arm(100, 1000)])
    assert decision.omnibus.p_value < 1e-6
    assert isinstance(decision, NoSignificantDifference)
    assert decision.difference == 0.0


def test_bonferroni_level_makes_more_variants_more_demanding() -> None:
    # The same leader-vs-runner-up gap wins among 2 variants but not among 4 at alpha 0.05:
    # 4 variants are 3 comparisons, each interval at 98.33%.
    two = decide([Arm(130, 1000), Arm(100, 1000)])
    four = decide([Arm(130, 1000), Arm(100, 1000), Arm(60, 1000), Arm(60, 1000)])
    assert isinstance(two, Winner)
    assert isinstance(four, NoSignificantDifference)
    assert four.omnibus.p_value < 0.05
    assert four.interval.level == pytest.approx(1 - 0.05 / 3)


@pytest.mark.parametrize(
    "arms",
    [
        [Arm(1, 10)],
        [Arm(1, 10)] * 5,
        [Arm(1, 10), Arm(0, 0)],
        [Arm(11, 10), Arm(1, 10)],
        [Arm(-1, 10), Arm(1, 10)],
    ],
)
def test_bad_input_is_a_validation_error(arms: list[Arm]) -> None:
    with pytest.raises(ValidationError):
        decide(arms)


def test_alpha_is_validated() -> None:
    with pytest.raises(ValidationError):
        decide([Arm(1, 10), Arm(2, 10)], alpha=0.0)
