"""Tokens of an NGP field's flat parameter vector, as in seed 004 (sec. 4: tokenization), and the way back.

A field (renderer.models.object_field, `ObjectField.flat` order) becomes a sequence of C = M + T_mlp + P tokens of
D = L x 8 x F values each:

  hash tokens  (M)      one per sampled point x_m in [0, 1]^3: the features of the 8 corners around x_m on every
                        level, [L, 8, F] flattened (tiny-cuda-nn's corner order, `renderer.hashgrid.corner_indices`)
  MLP tokens   (T_mlp)  neurons grouped and padded: a neuron's row is its incoming weights then its bias (in + 1
                        values); floor(D / (in + 1)) neurons share a token, or a row longer than D spans several
  [POS] tokens (P)      zeros: the slots the encoder fills with rotation information

Positional-embedding inputs per token: `xyz` [C, 3] (the point of a hash token, zero otherwise) and `nlk` [C, 3]:
n = place in the sequence, l = group (0 the hash grid, 1.. the MLP's Linear layers, then one for [POS]), k = index
within the group. `mask` [C, D] is 1 where a token value is a real parameter (the recon loss's M, seed eq. 3).

Tokenizing is a gather through `index` [C, D] (flat positions, -1 for padding). The way back: every MLP parameter
sits in exactly one token, so it returns exactly; a hash entry gathered several times (neighbouring points share
corners, hashing collides) gets the mean of its copies, computed in float64 so identical copies return their value
exactly; entries no point reaches are zero — `coverage` says how many are reached.

Coverage bounds what any decoder can give back. Measured on two fitted fields (default ObjectFieldConfig, 64², 2 views,
tokens -> weights with zeros where no token reaches, rendered against the field itself): 380 uniform points (the
seed's count) reach 53% of the hash parameters and render 24-25 dB; 2048 points reach 93% and render 40-41 dB.
"""

from __future__ import annotations

import torch

from renderer.errors import RedcubeError
from renderer.hashgrid import HashGridConfig, corner_indices, grid_levels

HASH, MLP, POS = 0, 1, 2
"""Token kinds."""


def sample_token_points(m: int, seed: int) -> torch.Tensor:
    """m points [m, 3] uniform in the box coordinates [0, 1)^3, seeded."""
    return torch.rand(m, 3, generator=torch.Generator().manual_seed(seed))


def grid_of(layout: dict) -> tuple[HashGridConfig, list]:
    """The hash grid a layout describes, checked against the layout's recorded levels (one sentence if they differ)."""
    config = HashGridConfig(**layout["hash_grid"])
    levels = grid_levels(config)
    if [[lv.resolution, lv.size, lv.offset] for lv in levels] != [[d["resolution"], d["size"], d["offset"]] for d in layout["levels"]]:
        raise RedcubeError("the field layout's recorded hash-grid levels do not match its settings; the layout comes from "
                           "a different hash-grid implementation: regenerate the fields with this redcube.")
    return config, levels


def mlp_rows(layout: dict) -> list[torch.Tensor]:
    """Per Linear layer, the flat positions [out, in + 1] of each neuron's incoming weights and bias."""
    rows, offset = [], layout["hash_params"]
    for out, inp in layout["mlp"]:
        w = offset + torch.arange(out * inp).reshape(out, inp)
        b = offset + out * inp + torch.arange(out)
        rows.append(torch.cat([w, b[:, None]], 1))
        offset += out * inp + out
    return rows


def pack_rows(rows: torch.Tensor, dim: int) -> torch.Tensor:
    """Neuron rows [out, r] packed into tokens [T, dim] (-1 pads): floor(dim / r) whole rows a token, or a long row
    split over ceil(r / dim) tokens."""
    out, r = rows.shape
    if r <= dim:
        per = dim // r
        pad = (-out) % per
        rows = torch.cat([rows, rows.new_full((pad, r), -1)])
        tokens = rows.reshape(-1, per * r)
    else:
        tokens = torch.cat([rows, rows.new_full((out, (-r) % dim), -1)], 1).reshape(-1, dim)
    return torch.cat([tokens, tokens.new_full((len(tokens), dim - tokens.shape[1]), -1)], 1)


class Tokenizer:
    """Flat field vectors [B, P] <-> token sequences [B, C, D] for one field layout and one set of points."""

    def __init__(self, layout: dict, points: torch.Tensor, n_pos: int = 10):
        if points.ndim != 2 or points.shape[1] != 3 or not ((points >= 0) & (points < 1)).all():
            raise RedcubeError("hash-token points must be an [M, 3] tensor in the box coordinates [0, 1)^3; "
                               "draw them with sample_token_points.")
        config, levels = grid_of(layout)
        self.layout, self.n_params, self.points = layout, layout["n_params"], points.float()
        f = config.n_features_per_level
        rows, _ = corner_indices(config, levels, self.points)  # [M, L, 8] table rows
        hash_index = (rows[..., None] * f + torch.arange(f)).reshape(len(points), -1)  # [M, L * 8 * F] flat positions
        self.dim = hash_index.shape[1]
        mlp = [pack_rows(r, self.dim) for r in mlp_rows(layout)]
        pos = torch.full((n_pos, self.dim), -1, dtype=torch.long)
        self.index = torch.cat([hash_index, *mlp, pos])  # [C, D]
        self.mask = self.index >= 0
        groups = [hash_index] + mlp + [pos]
        self.kind = torch.cat([torch.full((len(g),), k) for g, k in zip(groups, [HASH] + [MLP] * len(mlp) + [POS])])
        self.nlk = torch.cat([torch.stack([torch.zeros(len(g), dtype=torch.long), torch.full((len(g),), l), torch.arange(len(g))], 1)
                              for l, g in enumerate(groups)])
        self.nlk[:, 0] = torch.arange(len(self.index))
        self.xyz = torch.cat([self.points, torch.zeros(len(self.index) - len(points), 3)])
        self.counts = torch.zeros(self.n_params, dtype=torch.float64).index_add_(
            0, self.index[self.mask], torch.ones(int(self.mask.sum()), dtype=torch.float64))
        self.coverage = float((self.counts[:layout["hash_params"]] > 0).double().mean())
        """Share of the hash table's parameters some token holds."""

    @property
    def n_tokens(self) -> int:
        return len(self.index)

    def tokenize(self, flat: torch.Tensor) -> torch.Tensor:
        """Flat vectors [B, P] (or [P]) -> tokens [B, C, D] (or [C, D]), zeros at padding and [POS] tokens."""
        if flat.shape[-1] != self.n_params:
            raise RedcubeError(f"field vectors of {flat.shape[-1]} parameters do not fit this tokenizer's layout of {self.n_params}; "
                               "fields from a different hash-grid layout need a tokenizer built for their layout.")
        return flat[..., self.index.clamp_min(0)] * self.mask.to(flat.dtype)

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens [B, C, D] (or [C, D]) -> flat vectors [B, P]: MLP values as they stand, each hash entry the mean of
        its copies, zero where no token holds the entry."""
        if tokens.shape[-2:] != self.index.shape:
            raise RedcubeError(f"tokens of shape {list(tokens.shape)} do not fit this tokenizer's [{self.n_tokens}, {self.dim}] "
                               "sequences; decode them with the tokenizer that made them.")
        lead = tokens.shape[:-2]
        values = tokens.reshape(-1, *self.index.shape)[:, self.mask].double()  # [B, real values]
        sums = torch.zeros(len(values), self.n_params, dtype=torch.float64).index_add_(1, self.index[self.mask], values)
        held = self.counts > 0
        out = torch.zeros(len(values), self.n_params, dtype=tokens.dtype)
        out[:, held] = (sums[:, held] / self.counts[held]).to(out.dtype)
        return out.reshape(*lead, self.n_params)

    def describe(self) -> dict:
        """Sizes, as JSON: tokens by kind, token width, hash coverage."""
        return {"tokens": self.n_tokens, "dim": self.dim, "hash_tokens": int((self.kind == HASH).sum()),
                "mlp_tokens": int((self.kind == MLP).sum()), "pos_tokens": int((self.kind == POS).sum()),
                "hash_coverage": round(self.coverage, 4), "mlp_fill": round(float(self.mask[self.kind == MLP].double().mean()), 4)
                if (self.kind == MLP).any() else None}
