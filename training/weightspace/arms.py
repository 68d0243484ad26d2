"""The arms of issue 19: ways of reading a relative rotation (and same-object similarity) from NGP fields.

Each arm turns fields [N, P] into per-field readings once (`read`), then gives the rotation taking field a's object to
field b's (`rotation`, a 3x3 matrix) and its figures on a set of fields (`evaluate`: median relative-rotation error
over every ordered same-object pair, retrieval top-1). `READS` says in plain words what each arm looks at; the
Rotations tab shows it beside the arm's prediction.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from renderer.errors import RedcubeError
from renderer.models.object_field import ObjectFieldConfig
from renderer.quaternions import matrix
from training.checkpoint import load_checkpoint
from training.weightspace.axes import match, pairwise, prepared
from training.weightspace.grid import dense_levels, feature_grids, feature_magnitude, field_occupancy

READS = {
    "sane-tokens": "weights only: seed 004's transformer reads hash-table entries around 128 points and every MLP weight as "
                   "tokens; its rotation head compares the two fields' [POS] latents",
    "grid-axes": "weights only: a 3-D conv net reads the two densely stored hash levels as a voxel grid of features and "
                 "predicts occupancy and colour; the rotation is the turn that best aligns the two predicted shapes "
                 "(principal axes, signs by overlap)",
    "feature-axes": "weights only, nothing learned: the same two hash levels as grid-axes, each voxel's distance from "
                    "the field's median (empty-space) feature taken as its shape; the same alignment",
    "probe-axes": "function space, not weights alone: the field itself (hash grid + MLP) evaluated at 16^3 probe points "
                  "gives its occupancy; the same alignment as grid-axes",
}
WEIGHTS_ONLY = {"sane-tokens": True, "grid-axes": True, "feature-axes": True, "probe-axes": False}
PROBE_RES = 16
"""Probe grid of the function-space arm (the grid arm's resolution, so the two differ only in what they read)."""


class SaneArm:
    name = "sane-tokens"

    def __init__(self, path: Path):
        from training.weightspace.train import load_weightspace

        self.model, self.tokenizer, self.scales, self.record = load_weightspace(path)
        self.layout = self.tokenizer.layout

    @torch.no_grad()
    def read(self, flat: torch.Tensor) -> list[dict]:
        out = []
        for part in flat.split(16):
            z = self.model.encode(self.tokenizer.tokenize(part) / self.scales)
            emb = F.normalize(self.model.embedding(z), dim=1)
            out += [{"pos": p, "embedding": e} for p, e in zip(z[:, self.model.is_pos], emb)]
        return out

    @torch.no_grad()
    def rotation(self, a: dict, b: dict) -> torch.Tensor:
        q = self.model.rotation(a["pos"][None], b["pos"][None])[0]
        return matrix(q / q.norm())

    def evaluate(self, fields: dict, rows: torch.Tensor) -> dict:
        from training.weightspace.train import eval_set, evaluate

        objects = fields["object_ids"][rows].unique()
        return evaluate(self.model, eval_set(fields, self.tokenizer, objects, self.scales), self.tokenizer.mask)


class _AxesArm:
    """An arm whose readings are occupancy grids: the rotation and the figures come from their principal axes."""

    def rotation(self, a: dict, b: dict) -> torch.Tensor:
        return match(a, b)[0]

    def evaluate(self, fields: dict, rows: torch.Tensor) -> dict:
        return pairwise(self.read(fields["params"][rows]), fields["quaternions"][rows], fields["object_ids"][rows])


class GridArm(_AxesArm):
    name = "grid-axes"

    def __init__(self, path: Path):
        from training.weightspace.grid_train import load_grid

        self.model, self.record = load_grid(path)
        self.layout = self.record["data"]["layout"]

    def read(self, flat: torch.Tensor) -> list[dict]:
        from training.weightspace.grid_train import grid_arm_grids

        return grid_arm_grids(self.model, flat, self.layout)


class FeatureArm(_AxesArm):
    """The grid arm's input without its net: a control for what the learning adds. Needs only the fields' layout."""
    name = "feature-axes"

    def __init__(self, layout: dict):
        self.layout, self.record = layout, None

    def read(self, flat: torch.Tensor) -> list[dict]:
        out = []
        for part in flat.split(16):
            out += [prepared(w) for w in feature_magnitude(feature_grids(part, self.layout, dense_levels(self.layout), PROBE_RES))]
        return out


class ProbeArm(_AxesArm):
    """The function-space arm: needs no checkpoint, only the fields' own settings."""
    name = "probe-axes"

    def __init__(self, field_config: ObjectFieldConfig):
        self.field_config, self.record = field_config, None

    def read(self, flat: torch.Tensor) -> list[dict]:
        return [prepared(o) for o in field_occupancy(flat, self.field_config, PROBE_RES)]


def load_arm(path: str | Path):
    """The arm a checkpoint holds (by its kind), or one sentence."""
    kind = load_checkpoint(path).kind
    arms = {"weightspace": SaneArm, "weightspace-grid": GridArm}
    if kind not in arms:
        raise RedcubeError(f"{path} holds a {kind} checkpoint, not a weight-space arm; pass one written by redcube train-weightspace.")
    return arms[kind](Path(path))
