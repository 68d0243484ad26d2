"""Augmentations of flat NGP field vectors (seed 004, sec. 5.3.1): consistent neuron permutations and multiplicative noise.

Permuting the hidden neurons of Linear layer i — its weight rows and biases, and the matching input columns of
layer i + 1 — leaves the field's output unchanged (ReLU acts per neuron), so a permuted vector is a different
point in weight space for the same field. The hash grid and the output layer's neurons are never permuted.
"""

from __future__ import annotations

import torch

from training.weightspace.tokens import mlp_rows


def permute_mlp(flat: torch.Tensor, layout: dict, generator: torch.Generator) -> torch.Tensor:
    """Flat vectors [B, P] (or [P]) with every hidden layer's neurons shuffled by a random permutation per vector."""
    rows = mlp_rows(layout)
    out = flat.reshape(-1, flat.shape[-1]).clone()
    for b in range(len(out)):
        for i in range(len(rows) - 1):  # hidden layers only: the output layer's 4 channels keep their meaning
            perm = torch.randperm(len(rows[i]), generator=generator)
            out[b, rows[i]] = out[b, rows[i][perm]]  # this layer's neurons: weight rows and biases
            cols = rows[i + 1][:, :-1]
            out[b, cols] = out[b, cols[:, perm]]  # the next layer's inputs from them
    return out.reshape(flat.shape)


def multiplicative_noise(flat: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """flat * (1 + std * N(0, 1)), element-wise (the seed uses std 0.1)."""
    return flat * (1 + std * torch.randn(flat.shape, generator=generator, dtype=flat.dtype))
