"""Ring buffers: time-span reads across the wrap, counted overwrites, concurrent use."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from helo.streamer.buffers import RingBuffer


def _fill(buffer: RingBuffer, n: int, step: int = 7, srate: float = 100.0) -> None:
    times = np.arange(n) / srate
    samples = np.stack([times, -times], axis=1)
    for i in range(0, n, step):
        buffer.write(samples[i : i + step], times[i : i + step])


def test_reads_by_time_span_across_the_wrap():
    buffer = RingBuffer(50, 2)
    _fill(buffer, 173)  # wrapped three times
    times, samples = buffer.read_span(1.5, 1.72)
    np.testing.assert_allclose(times, np.arange(151, 173) / 100)
    np.testing.assert_allclose(samples[:, 0], times)  # rows stay with their timestamps
    assert buffer.newest_time() == pytest.approx(1.72)
    assert buffer.read_span(-np.inf, np.inf)[0][0] == pytest.approx(1.23)  # the oldest kept


def test_overwritten_samples_and_late_reads_are_counted():
    buffer = RingBuffer(50, 2)
    _fill(buffer, 173)
    assert buffer.overwritten == 123
    assert buffer.late_reads == 0
    times, _ = buffer.read_span(0.5, 1.5)  # asks for samples that have left
    assert times[0] == pytest.approx(1.23)
    assert buffer.late_reads == 1


def test_a_write_larger_than_the_buffer_keeps_the_newest():
    buffer = RingBuffer(10, 1)
    buffer.write(np.arange(25.0)[:, None], np.arange(25.0))
    times, _samples = buffer.read_span(-np.inf, np.inf)
    np.testing.assert_array_equal(times, np.arange(15.0, 25.0))
    assert buffer.overwritten == 15


def test_empty_buffer_reads_nothing():
    buffer = RingBuffer(10, 3)
    times, samples = buffer.read_span(0, 100)
    assert times.shape == (0,)
    assert samples.shape == (0, 3)
    assert buffer.newest_time() is None


def test_one_writer_many_readers_never_see_torn_rows():
    buffer = RingBuffer(1000, 2)
    done = threading.Event()
    bad = []

    def reader():
        while not done.is_set():
            newest = buffer.newest_time()
            if newest is None:
                continue
            times, samples = buffer.read_span(newest - 2.0, newest)
            if len(times) and (
                np.any(np.diff(times) <= 0)
                or not np.allclose(samples[:, 0], times)
                or not np.allclose(samples[:, 1], -times)
            ):
                bad.append(len(times))

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    _fill(buffer, 200_000, step=13, srate=1000.0)
    done.set()
    for thread in readers:
        thread.join()
    assert not bad
    assert buffer.overwritten == 200_000 - 1000  # every sample went through


def test_wait_for_returns_when_data_arrives():
    buffer = RingBuffer(10, 1)
    timer = threading.Timer(0.05, lambda: buffer.write(np.ones((1, 1)), np.array([5.0])))
    timer.start()
    assert buffer.wait_for(5.0, timeout_s=2.0)
    assert not buffer.wait_for(6.0, timeout_s=0.05)


def test_wait_for_a_sample_strictly_after_a_time():
    buffer = RingBuffer(10, 1)
    buffer.write(np.ones((1, 1)), np.array([5.0]))
    assert buffer.wait_for(5.0, timeout_s=0.01)
    assert not buffer.wait_for(5.0, timeout_s=0.01, after=True)
    assert buffer.wait_for(4.9, timeout_s=0.01, after=True)
