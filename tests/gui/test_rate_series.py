"""The live rate's series logic, without widgets: one sample a second, a window of span
seconds on real sample times, and nothing to draw from fewer than two samples."""

from __future__ import annotations

from botdesk.gui.models.rate import RateSeries


def test_fewer_than_two_samples_draw_nothing() -> None:
    s = RateSeries(span=60, every=1)
    assert s.points("shop") == ([], []) and not s.ready("shop")
    s.add("shop", 4.0, now=100.0)
    assert s.points("shop") == ([], []) and not s.ready("shop")
    assert s.latest("shop") == 4.0
    s.add("shop", 5.0, now=101.0)
    assert s.ready("shop")
    assert s.points("shop") == ([-1.0, 0.0], [4.0, 5.0])


def test_sampled_once_a_second_on_real_times_within_the_span() -> None:
    s = RateSeries(span=10, every=1)
    assert s.add("shop", 1.0, now=0.0)
    assert not s.add("shop", 9.0, now=0.5)  # too soon: the same second
    assert s.add("shop", 2.0, now=0.97)  # a timer a few ms early still counts
    assert s.add("shop", 3.0, now=4.0)  # a slow refresh: a 3 s gap, not an even step
    xs, ys = s.points("shop")
    assert xs == [-4.0, -3.03, 0.0] and ys == [1.0, 2.0, 3.0]
    for t in range(5, 16):
        s.add("shop", float(t), now=float(t))
    xs, ys = s.points("shop")
    assert xs[0] >= -10 and xs[-1] == 0.0 and ys[-1] == 15.0
    assert len(xs) == 11  # 5..15: the samples older than the span are gone


def test_series_are_separate_and_dropped_when_over() -> None:
    s = RateSeries()
    for t in range(3):
        s.add("a", 1.0, now=float(t))
        s.add("b", 2.0, now=float(t))
    s.drop("a")
    assert s.names() == ["b"] and not s.ready("a") and s.ready("b")
