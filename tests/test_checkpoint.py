"""Checkpoints: one safetensors file, no pickle, one-line errors for bad files."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors import safe_open

from helo.models.baselines import ConcatMLP, MLPConfig
from helo.models.checkpoint import load_checkpoint, save_checkpoint
from helo.models.errors import CheckpointError
from helo.models.features.extract import fit_normalization
from helo.models.helo import HeLo, HeLoConfig


@pytest.fixture
def fitted_spec(spec, tiny_dataset):
    return fit_normalization(spec, tiny_dataset.values, tiny_dataset.present)


@pytest.fixture
def saved(tmp_path, fitted_spec):
    torch.manual_seed(0)
    model = HeLo(HeLoConfig.from_spec(fitted_spec, d_model=32)).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", model, fitted_spec, {"note": "test"})
    return path, model


def _inputs(spec, n=3):
    feats = {m.name: torch.randn(n, *m.feature_shape) for m in spec.modalities}
    return feats, torch.ones(n, len(spec.modalities), dtype=torch.bool)


def test_round_trip_gives_the_same_model_spec_and_metadata(saved, fitted_spec):
    path, model = saved
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "helo"
    assert ckpt.spec == fitted_spec  # normalisation statistics included
    assert ckpt.training == {"note": "test"}
    assert not ckpt.model.training
    feats, present = _inputs(fitted_spec)
    torch.testing.assert_close(ckpt.model(feats, present), model(feats, present), rtol=0, atol=0)


def test_the_file_is_plain_safetensors_with_json_metadata(saved):
    path, _ = saved
    raw = path.read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_len])
    assert header["__metadata__"]["format"] == "helo-checkpoint"
    assert json.loads(header["__metadata__"]["spec"])["labels"][0] == "anger"
    with safe_open(str(path), "pt") as handle:
        assert "label_embedding" in handle.keys()  # noqa: SIM118


def test_baselines_round_trip_too(tmp_path, fitted_spec):
    from helo.models.training import build_model

    model = build_model("concat_mlp", fitted_spec, {"hidden": (16,)}).eval()
    assert isinstance(model, ConcatMLP)
    assert isinstance(model.config, MLPConfig)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "mlp.safetensors", model, fitted_spec))
    feats, present = _inputs(fitted_spec)
    torch.testing.assert_close(ckpt.model(feats, present), model(feats, present))


def _one_line(exc: pytest.ExceptionInfo, path) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert str(path) in text
    return text


def test_a_flipped_byte_is_caught(saved):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert "checksum mismatch" in _one_line(exc, path)


def test_a_truncated_file_is_caught(saved):
    path, _ = saved
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert "corrupt or truncated" in _one_line(exc, path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x00" * 64])
def test_other_files_are_refused(tmp_path, content):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    _one_line(exc, path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def _rewrite_metadata(path, change):
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as handle:
        metadata = dict(handle.metadata())
    change(metadata)
    save_file(load_file(str(path)), str(path), metadata=metadata)


def test_newer_format_and_foreign_files_are_refused(saved):
    path, _ = saved
    _rewrite_metadata(path, lambda m: m.update(format_version="7"))
    with pytest.raises(CheckpointError, match="format version 7 is newer"):
        load_checkpoint(path)
    _rewrite_metadata(path, lambda m: m.pop("format"))
    with pytest.raises(CheckpointError, match="not a HeLo checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_match_the_config_are_refused(saved):
    path, _ = saved

    def bigger(metadata):
        config = json.loads(metadata["model_config"])
        config["d_model"] = 64
        metadata["model_config"] = json.dumps(config)

    _rewrite_metadata(path, bigger)
    with pytest.raises(CheckpointError, match=r"has shape \[.*\], the model configuration needs"):
        load_checkpoint(path)


def test_a_bad_spec_inside_is_named(saved):
    path, _ = saved

    def break_spec(metadata):
        spec = json.loads(metadata["spec"])
        spec["modalities"][0]["group"] = "brain"
        metadata["spec"] = json.dumps(spec)

    _rewrite_metadata(path, break_spec)
    with pytest.raises(CheckpointError, match="modality 'eeg': group must be one of"):
        load_checkpoint(path)
