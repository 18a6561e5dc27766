"""HeLo as a module: shapes, determinism, learned label embedding, missing modalities."""

from __future__ import annotations

import itertools

import pytest
import torch

from helo.models.helo import HeLo, HeLoConfig, ModalityInput
from helo.models.losses import helo_loss, label_correlation_target

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

PAPER = (
    ModalityInput("eeg", "physiological", (18, 5)),
    ModalityInput("gsr", "physiological", (28,)),
    ModalityInput("ppg", "physiological", (27,)),
    ModalityInput("video", "behavioral", (768,)),
)


def _inputs(mods, batch: int, seed: int = 0, device: str = "cpu"):
    g = torch.Generator().manual_seed(seed)
    feats = {m.name: torch.randn(batch, *m.shape, generator=g).to(device) for m in mods}
    return feats, torch.ones(batch, len(mods), dtype=torch.bool, device=device)


def _model(mods=PAPER, k: int = 10, **options) -> HeLo:
    torch.manual_seed(0)
    return HeLo(HeLoConfig(modalities=mods, n_labels=k, d_model=32, **options))


@pytest.mark.parametrize("device", DEVICES)
def test_predicts_distributions_without_labels_on_any_device(device):
    model = _model().to(device).eval()
    feats, present = _inputs(PAPER, 5, device=device)
    probs = model.predict_proba(feats, present)  # no labels anywhere
    assert probs.shape == (5, 10)
    torch.testing.assert_close(probs.sum(1), torch.ones(5, device=device))
    assert (probs > 0).all()


def test_eval_is_deterministic_and_training_is_not():
    model = _model()
    feats, present = _inputs(PAPER, 4)
    model.eval()
    torch.testing.assert_close(model(feats, present), model(feats, present), rtol=0, atol=0)
    model.train()  # DropKey and dropout only now
    assert not torch.allclose(model(feats, present), model(feats, present))


def test_label_embedding_is_learned_through_the_correlation_loss():
    model = _model(k=4)
    assert any(p is model.label_embedding for p in model.parameters())
    before = model.label_embedding.detach().clone()
    feats, present = _inputs(PAPER, 8)
    target = torch.softmax(torch.randn(8, 4, generator=torch.Generator().manual_seed(1)), -1)
    start_gap = (model.label_correlation() - label_correlation_target(target)).abs().mean()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-2)
    for _ in range(30):
        loss, _parts = helo_loss(model(feats, present), target, model.label_correlation())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.allclose(before, model.label_embedding)
    gap = (model.label_correlation() - label_correlation_target(target)).abs().mean()
    assert gap < 0.5 * start_gap  # R moved towards the labels' correlation
    # and it stays what the model uses at test time: same output twice in eval
    model.eval()
    torch.testing.assert_close(model(feats, present), model(feats, present))


def test_absent_modalities_are_never_read():
    model = _model().eval()
    feats, present = _inputs(PAPER, 3)
    present[:, 3] = False  # no video
    present[1, 0] = False  # no EEG in window 1
    ref = model(feats, present)
    feats["video"] = torch.full_like(feats["video"], float("nan"))
    feats["eeg"][1] = 1e6
    out = model(feats, present)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref)


def test_every_nonempty_subset_gives_a_valid_distribution():
    model = _model().eval()
    feats, _ = _inputs(PAPER, 2)
    outputs = set()
    for size in range(1, 5):
        for subset in itertools.combinations(range(4), size):
            present = torch.zeros(2, 4, dtype=torch.bool)
            present[:, list(subset)] = True
            probs = model.predict_proba(feats, present)
            assert torch.isfinite(probs).all()
            torch.testing.assert_close(probs.sum(1), torch.ones(2))
            outputs.add(tuple(probs[0].round(decimals=5).tolist()))
    assert len(outputs) == 15  # each subset changes the prediction


@pytest.mark.parametrize(
    "mods",
    [
        PAPER[:1],  # EEG only
        PAPER[3:],  # behaviour only
        (PAPER[1], PAPER[2]),  # vector physiology only (WESAD-like): n_tokens tokens each
        (*PAPER[:3], ModalityInput("resp", "physiological", (12,)), PAPER[3]),  # 4 physiological
        (ModalityInput("eeg", "physiological", (64, 5)), PAPER[3]),
    ],
    ids=["eeg", "behaviour", "gsr+ppg", "four-physio+video", "64ch+video"],
)
def test_generic_in_modalities_channels_and_labels(mods):
    model = _model(mods, k=6).eval()
    feats, present = _inputs(mods, 3)
    assert model.predict_proba(feats, present).shape == (3, 6)


def test_a_window_alone_and_in_a_batch_give_the_same_distribution():
    model = _model().eval()
    feats, present = _inputs(PAPER, 40)
    batch = model.predict_proba(feats, present)
    alone = model.predict_proba({k: v[7:8] for k, v in feats.items()}, present[7:8])
    torch.testing.assert_close(batch[7:8], alone, atol=1e-5, rtol=1e-4)


def test_ablations_run_and_differ():
    feats, present = _inputs(PAPER, 2)
    outs = []
    for options in ({}, {"use_ot": False}, {"use_label_correlation": False}):
        outs.append(_model(**options).eval()(feats, present))
    assert not torch.allclose(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


def test_present_must_match_the_modalities():
    model = _model().eval()
    feats, _ = _inputs(PAPER, 2)
    with pytest.raises(ValueError, match=r"present must be \[B, 4\]"):
        model(feats, torch.ones(2, 3, dtype=torch.bool))


def test_config_round_trips_through_a_dict():
    config = HeLoConfig(modalities=PAPER, n_labels=10, d_model=64, use_ot=False)
    assert HeLoConfig.from_dict(config.to_dict()) == config


def test_each_eeg_channel_has_its_own_encoder():
    """Channel-wise weights equal C separate ``Linear(5 -> d)``: a token knows its electrode."""
    model = _model().eval()
    encoder = model.encoders["eeg"].linear
    x = torch.randn(3, 18, 5)
    separate = []
    for c in range(18):
        layer = torch.nn.Linear(5, 32)
        layer.weight.data = encoder.weight[c].T.detach().clone()
        layer.bias.data = encoder.bias[c].detach().clone()
        separate.append(layer(x[:, c]))
    torch.testing.assert_close(encoder(x), torch.stack(separate, 1))
    shared = _model(channel_weights=False).encoders["eeg"].linear
    assert tuple(shared.weight.shape) == (32, 5)  # the authors' one shared layer


def test_ot_reweighting_is_added_to_the_tokens_it_moves(monkeypatch):
    """With ``ot_residual`` the physiological tokens are ``Phys + T @ Phys``; without it,
    ``T @ Phys`` replaces them (the paper). A zero plan makes the difference visible."""
    import helo.models.helo as helo_module

    def zero_plan(source, target, *args):
        return torch.zeros(source.shape[0], source.shape[1], target.shape[1])

    monkeypatch.setattr(helo_module, "token_transport_plan", zero_plan)
    feats, present = _inputs(PAPER, 2)
    with_residual = _model().eval()(feats, present)
    without_ot = _model(use_ot=False).eval()(feats, present)
    replaced = _model(ot_residual=False).eval()(feats, present)
    torch.testing.assert_close(with_residual, without_ot)  # Phys + 0 = Phys
    assert not torch.allclose(replaced, without_ot)  # 0 @ Phys = 0


def test_configs_saved_before_the_options_mean_the_papers_architecture():
    data = HeLoConfig(modalities=PAPER, n_labels=10).to_dict()
    del data["channel_weights"], data["ot_residual"]
    old = HeLoConfig.from_dict(data)
    assert not old.channel_weights
    assert not old.ot_residual
    assert HeLoConfig(modalities=PAPER, n_labels=10).channel_weights  # new models: on
