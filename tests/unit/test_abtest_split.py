"""The seeded audience split: reproducible, even, disjoint, and nobody lost."""

from __future__ import annotations

import pytest

from botdesk.abtest import split_audience
from botdesk.errors import ValidationError

AUDIENCE = list(range(1000, 11_000, 3))  # 3,334 ids, not contiguous


@pytest.mark.parametrize("variants", [2, 3, 4])
@pytest.mark.parametrize("share", [0.1, 0.37, 1.0])
def test_split_is_even_disjoint_and_complete(variants: int, share: float) -> None:
    split = split_audience(AUDIENCE, variants=variants, test_share=share, seed=42)
    sizes = [len(g) for g in split.groups]
    assert len(sizes) == variants
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == round(share * len(AUDIENCE))
    everyone = [r for g in split.groups for r in g] + list(split.holdout)
    assert len(everyone) == len(set(everyone)) == len(AUDIENCE)
    assert set(everyone) == set(AUDIENCE)
    assert split.seed == 42 and split.test_share == share


def test_same_seed_same_split_whatever_the_input_order() -> None:
    a = split_audience(AUDIENCE, variants=3, test_share=0.2, seed=7)
    b = split_audience(list(reversed(AUDIENCE)), variants=3, test_share=0.2, seed=7)
    assert a == b


def test_another_seed_another_split() -> None:
    a = split_audience(AUDIENCE, variants=2, test_share=0.2, seed=7)
    b = split_audience(AUDIENCE, variants=2, test_share=0.2, seed=8)
    assert a.groups != b.groups


def test_test_share_is_a_random_sample_not_the_first_ids() -> None:
    split = split_audience(AUDIENCE, variants=2, test_share=0.1, seed=3)
    tested = sorted(r for g in split.groups for r in g)
    # A prefix of the sorted audience would end near id 2,000; a random 10% spans it all.
    assert tested[0] < 1500 and tested[-1] > 10_000


@pytest.mark.parametrize(
    ("recipients", "variants", "share"),
    [
        (AUDIENCE, 1, 0.5),
        (AUDIENCE, 5, 0.5),
        (AUDIENCE, 2, 0.0),
        (AUDIENCE, 2, 1.5),
        ([1, 2, 3], 4, 1.0),
        ([1, 1, 2, 3], 2, 1.0),
    ],
)
def test_bad_split_requests_are_validation_errors(
    recipients: list[int], variants: int, share: float
) -> None:
    with pytest.raises(ValidationError):
        split_audience(recipients, variants=variants, test_share=share, seed=1)
