"""De-jittering of a regular stream's timestamps: the running fit is a weighted least
squares line, and a gap or a step back inside or between packets is found and sized."""

from __future__ import annotations

import numpy as np
import pytest

from helo.streamer.dejitter import Dejitter


def _fed(dejitter: Dejitter, raw: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, list]:
    """``raw`` fed in packets of the given sizes (cycled), as a reader pulls them."""
    out, breaks, i, c = [], [], 0, 0
    while i < len(raw):
        k = sizes[c % len(sizes)]
        smoothed, found = dejitter(raw[i : i + k])
        out.append(smoothed)
        breaks += found
        i, c = i + k, c + 1
    return np.concatenate(out), breaks


@pytest.mark.parametrize("sizes", [[5], [1, 12, 3], [41, 82]])
def test_each_packet_is_put_on_the_weighted_least_squares_line_of_the_samples_so_far(sizes):
    rate, halflife_s = 256.0, 2.0
    rng = np.random.default_rng(3)
    n = 1500
    # a sender whose clock runs 50 ppm fast, stamping with 0.4 ms of jitter
    raw = 10.0 + np.arange(n) / rate * (1 + 50e-6) + rng.normal(0.0, 4e-4, n)
    dejitter = Dejitter(rate, halflife_s=halflife_s)
    keep = 0.5 ** (1.0 / (halflife_s * rate))
    end = 0
    checked = 0
    for c in range(10_000):
        k = sizes[c % len(sizes)]
        if end >= n:
            break
        chunk = raw[end : end + k]
        smoothed, breaks = dejitter(chunk)
        assert breaks == []
        end += len(chunk)
        if end >= 20:  # the line's own least squares over every sample so far
            x = np.arange(end, dtype=np.float64)
            weights = keep ** (end - 1 - x)
            slope, intercept = np.polyfit(x, raw[:end] - raw[0], 1, w=np.sqrt(weights))
            expected = raw[0] + intercept + slope * x[end - len(chunk) :]
            np.testing.assert_allclose(smoothed, expected, rtol=0, atol=1e-9)
            checked += 1
    assert checked > 10
    # the line removes most of the jitter
    line = 10.0 + np.arange(n) / rate * (1 + 50e-6)
    again, _ = _fed(Dejitter(rate, halflife_s=halflife_s), raw, sizes)
    assert np.abs(again[300:] - line[300:]).mean() < 0.25 * np.abs(raw[300:] - line[300:]).mean()


@pytest.mark.parametrize(
    ("rate", "sizes"), [(256.0, [5, 6, 1]), (30.0, [1, 2]), (2048.0, [41, 82])]
)
def test_a_gap_and_a_step_back_are_reported_inside_and_between_packets(rate, sizes):
    rng = np.random.default_rng(5)
    n = 3000
    times = 100.0 + np.arange(n) / rate
    times[1000:] += 0.7  # a pause of 0.7 s
    times[1777:] += 0.5  # another, likely inside a packet
    times[2500:] -= 0.3  # the sender's clock steps back
    raw = times + rng.normal(0.0, 1e-4, n)
    smoothed, breaks = _fed(Dejitter(rate), raw, sizes)
    assert breaks == pytest.approx([0.7, 0.5, -0.3], abs=0.01)
    assert len(smoothed) == n
    assert np.abs(smoothed - times).max() < 0.01
