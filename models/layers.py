"""Attention building blocks of HeLo, with DropKey that is on only while training.

DropKey (Li et al., CVPR 2023) masks random attention logits before the softmax
during training, a regulariser for small data. The authors' code leaves it on at
evaluation, which makes predictions random; here it follows ``self.training``, so
``model.eval()`` gives deterministic outputs.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from helo.models.fast_linear import Linear, linear, linear_gelu

# Added to dropped logits: large enough to zero their weight, finite so that a
# row whose keys are all dropped still gives a valid (uniform) softmax.
_DROPPED_LOGIT = -1e9


class MultiHeadAttention(nn.Module):
    """Multi-head attention ``softmax(Q K^T / sqrt(d_head) + bias) V`` with DropKey.

    ``bias`` (optional) is added to the scaled logits of every head, shape
    broadcastable to ``[B, heads, n_q, n_k]``. The query, key and value
    projections are one ``[3d, d]`` weight, applied in one matrix product when
    queries and keys are the same tokens (self-attention).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, dropkey: float = 0.0):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.dropout = dropout
        self.dropkey = dropkey
        self.in_proj = nn.Parameter(torch.empty(3 * d_model, d_model))
        nn.init.xavier_uniform_(self.in_proj)
        self.out = Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, n, d] -> [B, h, n, d_head]
        return x.unflatten(-1, (self.n_heads, self.d_head)).transpose(1, 2)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        d = self.d_model
        if query is keys:
            q, k, v = linear(query, self.in_proj).split(d, dim=-1)
        else:
            q = linear(query, self.in_proj[:d])
            k, v = linear(keys, self.in_proj[d:]).split(d, dim=-1)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        mask = bias
        if self.training and self.dropkey > 0:
            shape = (q.shape[0], self.n_heads, q.shape[2], k.shape[2])
            drop = torch.rand(shape, device=q.device) < self.dropkey
            dropped = torch.zeros(shape, dtype=q.dtype, device=q.device).masked_fill_(
                drop, _DROPPED_LOGIT
            )
            mask = dropped if mask is None else mask + dropped
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(attended.transpose(1, 2).flatten(2))


class CrossAttention(nn.Module):
    """``CA(x, y) = LayerNorm(x + MHA(q=x, k=y, v=y))`` (HeLo's physiological fusion)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, dropkey: float = 0.0):
        super().__init__()
        self.attention = MultiHeadAttention(d_model, n_heads, dropout, dropkey)
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.norm(_add_residual(x, self.attention(x, y, bias)))


class TransformerEncoderLayer(nn.Module):
    """Post-norm Transformer encoder layer: self-attention, then a GELU feed-forward."""

    def __init__(
        self, d_model: int, n_heads: int, ffn_dim: int, dropout: float = 0.0, dropkey: float = 0.0
    ):
        super().__init__()
        self.self_attention = CrossAttention(d_model, n_heads, dropout, dropkey)
        self.ffn = nn.Sequential(
            Linear(d_model, ffn_dim), nn.GELU(), Linear(ffn_dim, d_model), nn.Dropout(dropout)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.self_attention(x, x)
        if self.training or torch.is_grad_enabled():
            return self.norm(x + self.ffn(x))
        up, down = cast(Linear, self.ffn[0]), self.ffn[2]  # Linear, GELU, Linear, Dropout
        return self.norm(_add_residual(x, down(linear_gelu(x, up.weight, up.bias))))


def _add_residual(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``x + out``; at inference added into ``out`` (a fresh result, the same sum) instead
    of a new tensor: at large batches a new one costs more than the addition."""
    if torch.is_grad_enabled():
        return x + out
    return out.add_(x)
