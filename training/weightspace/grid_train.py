"""Training and evaluating the grid arm (`training.weightspace.grid_model`) on an NGP field data set.

  1. load the fields, split the objects exactly as train-weightspace does (same seed and held-out count)
  2. each step: B training fields, each turned by a fresh uniform random rotation (read from the hash table at turned
     probe points: continuous augmentation); targets are the analytic object's occupancy and colour in that pose
  3. loss: BCE(occupancy) + rgb_weight x colour MSE where the object is (the fit's loss, training.ngp_fields)
  4. evaluate on every field of the held-out objects as stored (no turning): predicted grids -> principal axes ->
     rotation of every same-object pair and retrieval top-1 (`training.weightspace.axes.pairwise`); the training
     objects' first fields likewise (does it fit what it sees?)
  5. checkpoint: the net, its config, the layout it reads, the split, in the one checkpoint format
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from renderer.errors import RedcubeError
from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.polycubes import polycube
from renderer.quaternions import multiply
from renderer.scene import Scene
from training.checkpoint import Checkpoint, load
from training.engine import Engine, Hooks, Plan
from training.ngp_dataset import load_fields, object_seed
from training.ngp_fields import occupancy_loss
from training.weightspace.axes import pairwise, prepared
from training.weightspace.data import split_objects
from training.weightspace.grid import feature_grids, object_grids, random_rotations
from training.weightspace.grid_model import GridConfig, GridDecoder


@dataclass
class GridTrainConfig:
    data: str
    """Data set directory written by redcube ngp-dataset."""
    steps: int = 600
    """Optimizer steps."""
    batch: int = 16
    """Fields per step."""
    lr: float = 3e-3
    """Adam learning rate (cosine to 5%)."""
    rgb_weight: float = 10.0
    """Weight of the colour MSE against the occupancy BCE."""
    heldout: int = 0
    """Objects held out (the same split as train-weightspace with the same seed)."""
    eval_every: int = 100
    """Steps between evaluations, log records and checkpoints."""
    minutes: float = 0.0
    """Wall-clock budget (0: none)."""
    threads: int = 1
    """torch threads (1 leaves the other core to the app and other jobs)."""
    seed: int = 0
    """Seeds the split, the token points, the batches and the augmentation."""
    out: str = "runs/weightspace_grid"
    """Run directory."""
    model: GridConfig = field(default_factory=GridConfig)
    """The net."""

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = GridConfig(**self.model)
        if min(self.steps, self.batch, self.eval_every) < 1 or not self.lr > 0 or self.minutes < 0:
            raise RedcubeError("the grid arm's steps, batch and eval_every must be positive, lr > 0 and minutes not negative; fix the options.")


def training_batch(fields: dict, rows: torch.Tensor, objects: dict, layout: dict, model: GridConfig, box: tuple,
                   gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step 2: features [B, C, r, r, r] of the fields at `rows`, each turned at random, and their occupancy and colour."""
    q, r = random_rotations(len(rows), gen)
    features = feature_grids(fields["params"][rows], layout, model.levels, model.res, r)
    q_turned = multiply(q, fields["quaternions"][rows])
    occ, rgb = object_grids([objects[int(o)] for o in fields["object_ids"][rows]], q_turned, model.res, box)
    return features, occ, rgb


@torch.no_grad()
def grid_arm_grids(model: GridDecoder, flat: torch.Tensor, layout: dict, chunk: int = 16) -> list[dict]:
    """The grid arm's reading of fields [N, P] as stored: predicted occupancy and colour, prepared for matching."""
    out = []
    for part in flat.split(chunk):
        occ, rgb = model.predict(feature_grids(part, layout, model.config.levels, model.config.res))
        out += [prepared(o, c) for o, c in zip(occ, rgb)]
    return out


def evaluate_grid(model: GridDecoder, fields: dict, objects: torch.Tensor, layout: dict) -> dict:
    """Step 4 on every field of `objects`."""
    rows = torch.isin(fields["object_ids"], objects).nonzero().squeeze(1)
    model.eval()
    grids = grid_arm_grids(model, fields["params"][rows], layout)
    return pairwise(grids, fields["quaternions"][rows], fields["object_ids"][rows])


class GridTrainer(Engine):
    """The grid arm's kind (steps 1-5 above): evaluation, a log record and the checkpoint every `eval_every` steps."""

    kind = "weightspace-grid"
    config_skip = ("model",)

    def __init__(self, config: GridTrainConfig, hooks: Hooks | None = None, resume: bool = False, overwrite: bool = False):
        self.config, self.scene = config, Scene()
        plan = Plan.of(config, minutes=config.minutes or None, log_every=config.eval_every, save_on_eval=True)
        super().__init__(plan, hooks, resume, overwrite)

    def setup(self, ckpt) -> None:
        c = self.config
        self.fields, manifest = load_fields(Path(c.data))  # 1.
        self.layout, seed = manifest["layout"], manifest["settings"]["seed"]
        c.model.features_per_level = self.layout["hash_grid"]["n_features_per_level"]  # the net's input width follows the data
        self.train_objs, self.held_objs = split_objects(self.fields["object_ids"], c.heldout, c.seed)
        self.objects = {int(o): polycube(object_seed(seed, int(o))) for o in self.train_objs}
        self.train_rows = torch.isin(self.fields["object_ids"], self.train_objs).nonzero().squeeze(1)
        self.box = ObjectField(ObjectFieldConfig(**manifest["settings"]["field"])).box
        self.model = GridDecoder(c.model)
        first = feature_grids(self.fields["params"][self.train_rows[:32]], self.layout, c.model.levels, c.model.res)
        self.model.scale.fill_(float(first.std()))
        self.optimizer = torch.optim.Adam([{"params": self.model.parameters(), "lr": c.lr, "peak": c.lr}], lr=c.lr)
        self.data = {"seed": seed, "heldout_objects": self.held_objs.tolist(), "layout": self.layout}

    def train_step(self) -> tuple[torch.Tensor, dict]:
        """2-3. B training fields, each turned at random, against the analytic object in that pose."""
        c = self.config
        rows = self.train_rows[torch.randperm(len(self.train_rows), generator=self.gen)[:c.batch]]
        self.model.train()
        features, occ, rgb = training_batch(self.fields, rows, self.objects, self.layout, c.model, self.box, self.gen)
        loss, self.terms = occupancy_loss(self.model(features), occ, rgb, occ, c.rgb_weight, dim=1)  # 3.
        return loss, self.terms

    def eval_record(self, train_loss: float) -> dict:
        """4. held-out objects and (as many) training objects."""
        held, train = self.held_objs, self.train_objs
        on_train = evaluate_grid(self.model, self.fields, train[:max(len(held), 2)], self.layout)
        metrics = evaluate_grid(self.model, self.fields, held if len(held) >= 2 else train, self.layout)
        metrics.pop("errors_deg")
        metrics.update(split="heldout" if len(held) >= 2 else "train", steps=self.step, train_seconds=round(self.elapsed, 1),
                       train_pairs={k: on_train[k] for k in ("median_rotation_error_deg", "retrieval_top1", "pairs")})
        return {"loss": train_loss, **self.terms, **metrics, "train_rotation_error_deg": on_train["median_rotation_error_deg"],
                "train_retrieval_top1": on_train["retrieval_top1"]}

    def saved_extra(self) -> tuple[dict, dict]:
        return {}, {"data": self.data}


def train_grid(config: GridTrainConfig, log: Callable[[dict], None] | None = None) -> dict:
    """Steps 1-5; returns the last evaluation (held-out objects, and training objects' figures under train_pairs)."""
    return GridTrainer(config, Hooks(on_record=log)).run()


def load_grid(path) -> tuple[GridDecoder, dict]:
    """(net, record) from a grid-arm checkpoint, or one sentence."""
    return load(path, GridDecoder.kind)


def grid_from(ckpt: Checkpoint) -> tuple[GridDecoder, dict]:
    """The grid arm's loader (training.checkpoint.LOADERS)."""
    model = GridDecoder(GridConfig(**ckpt.record["model"]["config"]))
    model.load_state_dict(ckpt.prefixed("model."))
    return model.eval(), ckpt.record
