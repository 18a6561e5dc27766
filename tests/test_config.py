"""Session settings: a TOML file, then the command line's flags, flags winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from helo.models.errors import HeloError
from helo.streamer.cli import build_parser
from helo.streamer.commands.replay import replay_options_from
from helo.streamer.commands.session_args import session_config_from
from helo.streamer.config import MAX_WAIT_S, STALE_S, TimePoint, load_session_config

SESSION_TOML = """
[session]
checkpoint = "models/other.safetensors"
hop_s = 0.5
stale_s = 3.0

[streams]
eeg = "BioSemi"
gsr = "Shimmer"

[outputs]
jsonl = "out/from-file.jsonl"
lsl = false
"""


def _run_args(tmp_path: Path, *flags: str):
    config = tmp_path / "session.toml"
    config.write_text(SESSION_TOML)
    return build_parser().parse_args(["run", "--config", str(config), *flags])


def test_the_file_sets_what_the_flags_leave_alone(tmp_path):
    config = session_config_from(_run_args(tmp_path))
    assert config.checkpoint == Path("models/other.safetensors")
    assert config.hop_s == 0.5
    assert config.stale_s == 3.0
    assert config.max_wait_s == MAX_WAIT_S  # neither: the one default
    assert config.streams == {"eeg": "BioSemi", "gsr": "Shimmer"}
    assert config.jsonl == Path("out/from-file.jsonl")
    assert config.lsl is False


def test_flags_win_over_the_file_and_stream_overrides_merge(tmp_path):
    args = _run_args(
        tmp_path,
        "--hop",
        "0.1",
        "--stream",
        "eeg=OpenBCI",
        "--jsonl",
        "flag.jsonl",
        "--checkpoint",
        "mine.safetensors",
    )
    config = session_config_from(args)
    assert config.hop_s == 0.1
    assert config.checkpoint == Path("mine.safetensors")
    assert config.streams == {"eeg": "OpenBCI", "gsr": "Shimmer"}  # gsr from the file
    assert config.jsonl == Path("flag.jsonl")
    assert config.stale_s == 3.0


def test_without_a_file_every_setting_has_its_default():
    config = load_session_config(None, {})
    assert (config.max_wait_s, config.stale_s, config.hop_s) == (MAX_WAIT_S, STALE_S, None)
    assert config.lsl is True
    assert config.stdout is True
    assert config.align_ends is True  # live window ends where the packets arrive


def test_round_window_ends_can_be_kept(tmp_path):
    path = tmp_path / "round.toml"
    path.write_text("[session]\nalign_ends = false\n")
    assert load_session_config(path, {}).align_ends is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sessions]\nhop_s = 1\n", "unknown section(s) ['sessions']"),
        ("[session]\nhop = 1\n", "unknown setting(s) ['hop']"),
        ("[session]\nmax_wait_s = -1\n", "max_wait_s must be a number > 0"),
        ("[session]\nalign_ends = 1\n", "align_ends must be true or false"),
        ("[session\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(HeloError) as exc:
        load_session_config(path, {})
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_replay_flags_become_replay_options(tmp_path):
    args = build_parser().parse_args(
        ["replay", "x.xdf", "--speed", "4", "--from", "120", "--to", "lsl:5000.5"]
    )
    options = replay_options_from(args)
    assert options.speed == 4.0
    assert options.start == TimePoint(120.0)
    assert options.end == TimePoint(5000.5, lsl=True)
    assert options.start.resolve(1000.0) == 1120.0  # seconds into a recording at LSL 1000
    assert options.end.resolve(1000.0) == 5000.5
    with pytest.raises(HeloError, match="--speed '0'"):
        replay_options_from(build_parser().parse_args(["replay", "x.xdf", "--speed", "0"]))


def test_a_members_personal_model_comes_from_their_table_or_the_flag(tmp_path):
    config = tmp_path / "group.toml"
    config.write_text(
        '[participants.P01]\neeg = "EEG-P01"\nmodel = "p01.safetensors"\n'
        '[participants.P02]\neeg = "EEG-P02"\n'
    )
    args = ["run", "--config", str(config), "--personal", "P02=p02.safetensors"]
    settings = session_config_from(build_parser().parse_args(args))
    assert settings.personal == {"P01": "p01.safetensors", "P02": "p02.safetensors"}
    assert settings.participants == {"P01": {"eeg": "EEG-P01"}, "P02": {"eeg": "EEG-P02"}}
    with pytest.raises(HeloError, match="expected PARTICIPANT=MODEL"):
        session_config_from(build_parser().parse_args(["run", "--personal", "p01.safetensors"]))
