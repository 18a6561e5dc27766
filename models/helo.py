"""HeLo: heterogeneity and label-correlation driven emotion distribution learning.

Zheng, Tian, Wen, Zhang, Zhu. "HeLo: Heterogeneous Multi-Modal Fusion with Label
Correlation for Emotion Distribution Learning". ACM MM 2025, arXiv:2507.06821.

Input: a dict of per-modality features (one window each) and a boolean
``present [B, M]`` mask, columns in the order of ``config.modalities``. Output:
logits ``[B, K]``; ``softmax`` gives the emotion distribution. Labels are never
needed to predict, and ``eval()`` is deterministic (no DropKey, no dropout).

Method, with shapes (d = ``d_model``, C = tokens of the query modality, K labels):

1. Encoders: one ``Linear(F -> d)`` per channel for channel x feature inputs (EEG
   DE ``[C, 5]`` -> C tokens); ``Linear(D -> n*d)`` for vectors (GSR, PPG -> C
   tokens each; behaviour -> as many tokens as the physiological set).
2. Physiological fusion, the first physiological modality (EEG) as the query:
   ``p_m = LayerNorm(E + MHA(E, X_m, X_m))`` with one shared module for every
   other physiological modality X_m; ``Phys = Linear(d -> d)(concat_m p_m)``.
3. Heterogeneity mining: Gromov-Wasserstein plan T between Phys and Behav
   tokens (:mod:`models.ot`), rows scaled to sum to 1; ``Phys <- Phys + T @ Phys``.
4. One shared Transformer encoder layer on Phys and on Behav; concatenated
   along tokens and projected ``Linear(n_tokens -> K)`` along the token axis.
5. Label embedding L (learned ``[K, d]`` parameter); correlation
   ``R = norm(L) norm(L)^T``.
6. Label-correlation-driven cross-attention: ``softmax((Q K^T + R)/sqrt(d_h)) V``
   with queries from L, keys/values from the fused tokens; ``LayerNorm(L + .)``.
7. Head: ``flatten -> Linear(K*d, d) -> ReLU -> Linear(d, d) -> ReLU -> Linear(d, K)``.

Two changes to the published model (both options, off for checkpoints saved
before them; docs/model.md has the measurements): each EEG channel has its own
encoder, and the OT re-weighting is added to the physiological tokens instead of
replacing them. The published form shares one encoder across channels and its
diffuse plans average the tokens, so it cannot use the EEG.

Beyond the paper, missing modalities: an absent modality's tokens are replaced by
learned "absent" tokens (its features are never read, NaN is fine), and OT is
skipped for a window that lacks either side. Trained with random modality
dropout (:mod:`models.training`), any non-empty subset gives a distribution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from helo.models.fast_linear import Linear
from helo.models.features.spec import FeatureSpec
from helo.models.layers import CrossAttention, TransformerEncoderLayer
from helo.models.ot import token_transport_plan


@dataclass(frozen=True)
class ModalityInput:
    """Name, group ("physiological"/"behavioral") and feature shape of one input."""

    name: str
    group: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class HeLoConfig:
    """Architecture of a HeLo model; defaults are the paper's (DMER configuration)."""

    modalities: tuple[ModalityInput, ...]
    n_labels: int
    d_model: int = 128
    n_heads: int = 4
    ffn_dim: int = 64
    lcd_heads: int = 1
    dropout: float = 0.5
    dropkey: float = 0.5
    n_tokens: int = 16  # tokens per vector modality when no channel-wise query exists
    use_ot: bool = True
    use_label_correlation: bool = True
    ot_beta: float = 0.1
    ot_outer: int = 5
    ot_inner: int = 20
    cost_threshold: float = 0.1
    ot_residual: bool = True  # Phys + T @ Phys (False: T @ Phys alone, as the paper)
    channel_weights: bool = True  # one encoder per EEG channel (False: shared, as the authors)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.modalities:
            raise ValueError("HeLoConfig needs at least one modality")
        if sum(m.group == "behavioral" for m in self.modalities) > 1:
            raise ValueError("HeLo takes at most one behavioral modality")
        if self.n_labels < 2:
            raise ValueError(f"n_labels must be >= 2, got {self.n_labels}")

    @classmethod
    def from_spec(cls, spec: FeatureSpec, **overrides: Any) -> HeLoConfig:
        mods = tuple(
            ModalityInput(m.name, m.group, tuple(m.feature_shape)) for m in spec.modalities
        )
        return cls(modalities=mods, n_labels=spec.n_labels, **overrides)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["modalities"] = [
            {"name": m.name, "group": m.group, "shape": list(m.shape)} for m in self.modalities
        ]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeLoConfig:
        data = dict(data)
        # Configurations saved before the option existed had the shared EEG encoder.
        data.setdefault("channel_weights", False)
        data.setdefault("ot_residual", False)
        mods = tuple(
            ModalityInput(str(m["name"]), str(m["group"]), tuple(int(n) for n in m["shape"]))
            for m in data.pop("modalities")
        )
        known = set(cls.__dataclass_fields__) - {"modalities"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s) {unknown}")
        return cls(modalities=mods, **data)


class _ChannelLinear(nn.Module):
    """One ``Linear(F -> d)`` per channel, ``[B, C, F] -> [B, C, d]``: each token knows its
    electrode. (A single shared linear, as in the authors' code, gives tokens that say
    nothing about where they were measured: attention is blind to order and the OT step
    re-mixes the tokens, so the spatial EEG patterns of emotions are lost.)"""

    def __init__(self, n_channels: int, n_features: int, d_model: int):
        super().__init__()
        bound = 1.0 / math.sqrt(n_features)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(
            torch.empty(n_channels, n_features, d_model).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(n_channels, d_model).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [C, B, F] @ [C, F, d] -> [C, B, d]: one batched product over the channels.
        return torch.baddbmm(self.bias.unsqueeze(1), x.transpose(0, 1), self.weight).transpose(0, 1)


class _TokenEncoder(nn.Module):
    """Features of one modality -> ``[B, n_tokens, d]`` tokens."""

    def __init__(
        self,
        shape: tuple[int, ...],
        n_tokens: int,
        d_model: int,
        per_channel: bool,
        channel_weights: bool = False,
    ):
        super().__init__()
        self.per_channel = per_channel
        self.n_tokens = n_tokens
        self.d_model = d_model
        self.linear: nn.Module
        if per_channel and channel_weights:
            self.linear = _ChannelLinear(shape[0], shape[-1], d_model)
        elif per_channel:
            self.linear = Linear(shape[-1], d_model)
        else:
            self.linear = Linear(math.prod(shape), n_tokens * d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_channel:
            return self.linear(x)
        return self.linear(x.flatten(1)).view(x.shape[0], self.n_tokens, self.d_model)


class HeLo(nn.Module):
    """HeLo emotion-distribution network for any number of physiological modalities
    (the first is the attention query), at most one behavioral modality, K labels."""

    def __init__(self, config: HeLoConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        mods = config.modalities
        self._phys = [i for i, m in enumerate(mods) if m.group == "physiological"]
        self._behav = [i for i, m in enumerate(mods) if m.group == "behavioral"]
        query = mods[self._phys[0]] if self._phys else None
        n_query = query.shape[0] if query is not None and len(query.shape) == 2 else config.n_tokens
        n_phys = n_query * max(len(self._phys) - 1, 1) if self._phys else 0
        n_behav = (n_phys or n_query) if self._behav else 0

        self.encoders = nn.ModuleDict()
        self.absent = nn.ParameterDict()
        for i, mod in enumerate(mods):
            per_channel = len(mod.shape) == 2 and mod.group == "physiological"
            if i in self._behav:
                n_tok = n_behav
            elif per_channel:
                n_tok = mod.shape[0]
            else:
                n_tok = n_query
            self.encoders[mod.name] = _TokenEncoder(
                mod.shape, n_tok, d, per_channel, config.channel_weights
            )
            self.absent[mod.name] = nn.Parameter(torch.randn(n_tok, d) * 0.02)

        drop, dkey = config.dropout, config.dropkey
        self.cross_attention = (
            CrossAttention(d, config.n_heads, drop, dkey) if len(self._phys) >= 2 else None
        )
        self.phys_projection = Linear(d, d) if self._phys else None
        self.encoder_layer = TransformerEncoderLayer(d, config.n_heads, config.ffn_dim, drop, dkey)
        # Linear(n_tokens -> K) along the token axis: weight [K, n_tokens], bias [K].
        self.token_projection = nn.Linear(n_phys + n_behav, config.n_labels)
        self.label_embedding = nn.Parameter(torch.randn(config.n_labels, d))
        self.label_attention = CrossAttention(d, config.lcd_heads, drop, dkey)
        self.head = nn.Sequential(
            Linear(config.n_labels * d, d),
            nn.ReLU(),
            Linear(d, d),
            nn.ReLU(),
            Linear(d, config.n_labels),
        )

    def label_correlation(self) -> torch.Tensor:
        """Learned label correlation ``R = norm(L) norm(L)^T``, ``[K, K]``."""
        unit = F.normalize(self.label_embedding, dim=-1)
        return unit @ unit.T

    def forward(self, features: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, K]`` from ``features[name] [B, *shape]`` and ``present [B, M]``,
        step by step as in the paper's method section."""
        mods = self.config.modalities
        if present.dim() != 2 or present.shape[1] != len(mods):
            raise ValueError(f"present must be [B, {len(mods)}], got {tuple(present.shape)}")
        present = present.bool()
        tokens = self.encode(features, present)  # 1. a token set per modality
        groups = []
        if self._phys:
            phys = self.physiological_fusion(tokens)  # 2. [B, n_phys, d]
            if self._behav and self.config.use_ot:
                phys = self.heterogeneity_mining(phys, tokens[self._behav[0]], present)  # 3.
            groups.append(phys)
        if self._behav:
            groups.append(tokens[self._behav[0]])
        fused = self.shared_encoding(groups)  # 4. [B, K, d]
        out = self.label_correlation_attention(fused)  # 5-6. [B, K, d]
        return self.head(out.flatten(1))  # 7. [B, K]

    def encode(
        self, features: dict[str, torch.Tensor], present: torch.Tensor
    ) -> list[torch.Tensor]:
        """Step 1: each modality's features -> ``[B, n, d]`` tokens; an absent modality's
        tokens are its learned "absent" tokens (its features are never read)."""
        complete = bool(present.all())  # a live window usually has every modality
        tokens = []
        for i, mod in enumerate(self.config.modalities):
            x = features[mod.name]
            if complete:
                tokens.append(self.encoders[mod.name](x))
                continue
            ok = present[:, i]
            x = torch.where(ok.view(-1, *([1] * (x.dim() - 1))), x, torch.zeros((), dtype=x.dtype))
            encoded = self.encoders[mod.name](x)
            tokens.append(torch.where(ok.view(-1, 1, 1), encoded, self.absent[mod.name]))
        return tokens

    def physiological_fusion(self, tokens: list[torch.Tensor]) -> torch.Tensor:
        """Step 2: the first physiological modality (EEG) queries every other one through
        one shared cross-attention, run as one batched call over the key sets; the
        results are concatenated along tokens and projected."""
        query = tokens[self._phys[0]]
        if self.cross_attention is not None:
            keys = torch.stack([tokens[i] for i in self._phys[1:]], 1)  # [B, P-1, n, d]
            n_sets = keys.shape[1]
            fused_q = query.unsqueeze(1).expand(-1, n_sets, -1, -1).flatten(0, 1)
            phys = self.cross_attention(fused_q, keys.flatten(0, 1))  # [B*(P-1), C, d]
            phys = phys.view(query.shape[0], n_sets * query.shape[1], -1)
        else:
            phys = query
        assert self.phys_projection is not None
        return self.phys_projection(phys)

    def heterogeneity_mining(
        self, phys: torch.Tensor, behav: torch.Tensor, present: torch.Tensor
    ) -> torch.Tensor:
        """Step 3: the Gromov-Wasserstein plan between physiological and behavioural
        tokens re-weights the physiological ones (added to them, or replacing them as
        published); skipped for windows that lack either side."""
        plan = token_transport_plan(
            phys,
            behav,
            self.config.ot_beta,
            self.config.ot_outer,
            self.config.ot_inner,
            self.config.cost_threshold,
        )
        if self.config.ot_residual:  # phys + T @ phys in one product
            moved = torch.baddbmm(phys, plan, phys)
        else:
            moved = torch.bmm(plan, phys)
        if bool(present.all()):
            return moved
        both = present[:, self._phys].any(1) & present[:, self._behav[0]]
        return torch.where(both.view(-1, 1, 1), moved, phys)

    def shared_encoding(self, groups: list[torch.Tensor]) -> torch.Tensor:
        """Step 4: one shared encoder layer over each token set (equal sizes by
        construction, stacked along the batch: ``[B, G, n, d] -> [B*G, n, d]``), the sets
        concatenated along tokens and projected ``Linear(n_tokens -> K)``: ``[B, K, d]``."""
        stacked = torch.stack(groups, 1)
        fused = self.encoder_layer(stacked.flatten(0, 1)).view(
            stacked.shape[0], -1, stacked.shape[-1]
        )
        proj = self.token_projection  # mixes tokens; W @ fused avoids transposing [B, n, d]
        weight = proj.weight.expand(len(fused), -1, -1)  # one batched product, bias included
        return torch.baddbmm(proj.bias.view(1, -1, 1), weight, fused)

    def label_correlation_attention(self, fused: torch.Tensor) -> torch.Tensor:
        """Steps 5-6: the learned label embedding queries the fused tokens, its learned
        correlation ``R`` added to the attention logits."""
        labels = self.label_embedding.expand(fused.shape[0], -1, -1)
        bias = None
        if self.config.use_label_correlation:
            d_head = self.config.d_model // self.config.lcd_heads
            bias = (self.label_correlation() / math.sqrt(d_head)).to(fused.dtype)
        return self.label_attention(labels, fused, bias)

    @torch.no_grad()
    def predict_proba(
        self, features: dict[str, torch.Tensor], present: torch.Tensor
    ) -> torch.Tensor:
        """Emotion distributions ``[B, K]`` (rows sum to 1)."""
        return torch.softmax(self(features, present), dim=-1)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
