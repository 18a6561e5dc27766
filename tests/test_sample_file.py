"""A recording's samples live in memory-mapped temporary files, not in memory, and are
the very numbers pyxdf reads (real LabRecorder files and the shipped demo recording)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyxdf

from helo.models.errors import DatasetError
from helo.models.sample_file import SampleFile
from helo.models.xdf import read_recording

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "xdf"
DEMO = sorted((REPO / "recordings").glob("demo_*.xdf"))[0]


def _pyxdf_samples(path: Path) -> dict[str, np.ndarray]:
    """Every numeric stream's samples as pyxdf alone reads them (into memory)."""
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True, dejitter_timestamps=True)
    return {
        s["info"]["name"][0]: np.asarray(s["time_series"], dtype=np.float64)
        for s in streams
        if s["info"]["channel_format"][0] != "string"
    }


@pytest.mark.parametrize(
    "path", [FIXTURES / "minimal.xdf", FIXTURES / "empty_streams.xdf", DEMO], ids=lambda p: p.name
)
def test_samples_are_those_pyxdf_reads_and_live_in_a_file(path):
    expected = _pyxdf_samples(path)
    recorded = read_recording(path)
    numeric = [s for s in recorded if s.description.numeric]
    assert {s.description.name for s in numeric} == set(expected)
    for stream in numeric:
        want = expected[stream.description.name].reshape(stream.samples.shape)
        assert stream.samples.dtype == np.float64
        np.testing.assert_array_equal(stream.samples, want)
        if len(stream.times):
            assert isinstance(stream.backing, SampleFile)
            assert not stream.samples.flags.owndata  # a view onto the file's mapping
    for stream in recorded:
        if not stream.description.numeric:  # markers and labels stay plain objects
            assert stream.backing is None
            assert stream.samples.dtype == object


def test_released_rows_read_the_same_again():
    eeg = next(s for s in read_recording(DEMO) if s.description.type == "EEG")
    before = np.array(eeg.samples)
    eeg.release_before(len(eeg.times))  # every page handed back...
    np.testing.assert_array_equal(eeg.samples, before)  # ...comes back from the file
    eeg.samples[0, 0] += 1.0  # writing changes this process's copy, never the file
    again = next(s for s in read_recording(DEMO) if s.description.type == "EEG")
    assert again.samples[0, 0] == before[0, 0]


def test_a_full_temporary_disk_is_a_one_line_error_naming_the_file(tmp_path, monkeypatch):
    """A temporary directory that cannot take the samples (here: gone) is said, with the
    file and the fix, instead of a recording read with holes."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "no-such-dir"))
    with pytest.raises(DatasetError) as caught:
        read_recording(DEMO)
    message = str(caught.value)
    assert DEMO.name in message
    assert "TMPDIR" in message
    assert "\n" not in message
