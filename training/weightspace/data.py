"""Batches of view pairs for the weight-space autoencoder: two rotations of each of B distinct objects.

From a data set loaded by `training.ngp_dataset.load_fields`: each batch draws B different objects (so the
NT-Xent negatives are truly other objects), two of each object's fields (rotations) at random, optionally
augments every vector (consistent MLP neuron permutation, then multiplicative noise: seed 004 sec. 5.3.1),
and tokenizes them. A split by object keeps held-out objects out of training (`split_objects`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from renderer.errors import RedcubeError
from training.weightspace.augment import multiplicative_noise, permute_mlp
from training.weightspace.tokens import Tokenizer


@dataclass
class PairBatch:
    """B view pairs: tokens [B, C, D] of views a and b (two rotations of each object), their rotations [B, 4] and the
    object ids [B]."""
    tokens_a: torch.Tensor
    tokens_b: torch.Tensor
    q_a: torch.Tensor
    q_b: torch.Tensor
    objects: torch.Tensor


def split_objects(object_ids: torch.Tensor, heldout: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) object ids: `heldout` objects drawn at random, seeded; no object is in both."""
    objects = object_ids.unique()
    if not 0 <= heldout < len(objects):
        raise RedcubeError(f"cannot hold out {heldout} of {len(objects)} objects; hold out fewer than the data set holds.")
    order = objects[torch.randperm(len(objects), generator=torch.Generator().manual_seed(seed))]
    return order[heldout:].sort().values, order[:heldout].sort().values


def same_pairs(objects: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (i, j) of every ordered pair of two different fields of one object, from object ids [N]."""
    same = (objects[:, None] == objects[None]) & ~torch.eye(len(objects), dtype=torch.bool)
    return same.nonzero().unbind(1)


class PairSampler:
    """Random pair batches over the fields of `objects` (ids), each object needing at least two rotations."""

    def __init__(self, fields: dict[str, torch.Tensor], tokenizer: Tokenizer, objects: torch.Tensor,
                 permute: bool = True, noise_std: float = 0.1):
        self.fields, self.tokenizer, self.permute, self.noise_std = fields, tokenizer, permute, noise_std
        self.rows = {int(o): (fields["object_ids"] == o).nonzero().squeeze(1) for o in objects}
        few = [o for o, r in self.rows.items() if len(r) < 2]
        if few or not self.rows:
            raise RedcubeError(f"objects {few[:5]} have fewer than two rotations, so they give no view pairs; "
                               "make the data set with --rotations 2 or more.")
        self.objects = torch.tensor(sorted(self.rows))

    def batch(self, size: int, generator: torch.Generator) -> PairBatch:
        if not 2 <= size <= len(self.objects):
            raise RedcubeError(f"a batch of {size} distinct objects needs between 2 and {len(self.objects)} objects; "
                               "pick a batch size in that range.")
        objs = self.objects[torch.randperm(len(self.objects), generator=generator)[:size]]
        pick = [self.rows[int(o)][torch.randperm(len(self.rows[int(o)]), generator=generator)[:2]] for o in objs]
        a, b = (torch.stack([p[v] for p in pick]) for v in (0, 1))
        return PairBatch(self._tokens(a, generator), self._tokens(b, generator),
                         self.fields["quaternions"][a], self.fields["quaternions"][b], objs)

    def _tokens(self, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        flat = self.fields["params"][rows]
        if self.permute:
            flat = permute_mlp(flat, self.tokenizer.layout, generator)
        if self.noise_std > 0:
            flat = multiplicative_noise(flat, self.noise_std, generator)
        return self.tokenizer.tokenize(flat)
