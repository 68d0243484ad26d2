"""Training and evaluating the grid arm (`training.weightspace_grid_model`) on an NGP field data set.

  1. load the fields, split the objects exactly as train-weightspace does (same seed and held-out count)
  2. each step: B training fields, each turned by a fresh uniform random rotation (read from the hash table at turned
     probe points: continuous augmentation); targets are the analytic object's occupancy and colour in that pose
  3. loss: BCE(occupancy) + rgb_weight x colour MSE where the object is (the fit's loss, training.ngp_fields)
  4. evaluate on every field of the held-out objects as stored (no turning): predicted grids -> principal axes ->
     rotation of every same-object pair and retrieval top-1 (`training.weightspace_axes.pairwise`); the training
     objects' first fields likewise (does it fit what it sees?)
  5. checkpoint: the net, its config, the layout it reads, the split, in the one checkpoint format
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from renderer.errors import RedcubeError
from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.polycubes import polycube
from renderer.quaternions import multiply
from renderer.scene import Scene
from training.checkpoint import load_checkpoint, save_checkpoint
from training.ngp_dataset import load_fields, object_seed
from training.schedules import cosine
from training.weightspace_axes import pairwise, prepared
from training.weightspace_data import split_objects
from training.weightspace_grid import feature_grids, object_grids, random_rotations
from training.weightspace_grid_model import GridConfig, GridDecoder


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
    seed: int = 0
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


def grid_loss(out: torch.Tensor, occ: torch.Tensor, rgb: torch.Tensor, rgb_weight: float) -> tuple[torch.Tensor, dict]:
    """Step 3: BCE(occupancy logit) + rgb_weight x colour MSE inside the object."""
    bce = F.binary_cross_entropy_with_logits(out[:, 0], occ)
    err = ((torch.sigmoid(out[:, 1:]) - rgb) ** 2).mean(1)
    mse = (err * occ).sum() / occ.sum().clamp_min(1)
    return bce + rgb_weight * mse, {"bce": float(bce.detach()), "rgb_mse": float(mse.detach())}


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


def train_grid(config: GridTrainConfig, log: Callable[[dict], None] | None = None) -> dict:
    """Steps 1-5; returns the last evaluation (held-out objects, and training objects' figures under train_pairs)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    fields, manifest = load_fields(Path(config.data))  # 1.
    layout, seed = manifest["layout"], manifest["settings"]["seed"]
    config.model.features_per_level = layout["hash_grid"]["n_features_per_level"]  # the net's input width follows the data
    train_objs, held_objs = split_objects(fields["object_ids"], config.heldout, config.seed)
    objects = {int(o): polycube(object_seed(seed, int(o))) for o in train_objs}
    train_rows = torch.isin(fields["object_ids"], train_objs).nonzero().squeeze(1)
    box = ObjectField(ObjectFieldConfig(**manifest["settings"]["field"])).box
    model = GridDecoder(config.model)
    model.scale.fill_(float(feature_grids(fields["params"][train_rows[:32]], layout, config.model.levels, config.model.res).std()))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "log.jsonl").write_text("")
    data = {"seed": seed, "heldout_objects": held_objs.tolist(), "layout": layout}
    start, step, metrics = time.time(), 0, {}
    while step < config.steps and not (config.minutes and time.time() - start > 60 * config.minutes):
        step += 1
        opt.param_groups[0]["lr"] = cosine(config.lr, step / config.steps)
        rows = train_rows[torch.randperm(len(train_rows), generator=gen)[:config.batch]]
        model.train()
        features, occ, rgb = training_batch(fields, rows, objects, layout, config.model, box, gen)
        loss, terms = grid_loss(model(features), occ, rgb, config.rgb_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % config.eval_every == 0 or step == config.steps:
            metrics = grid_checkpoint(model, config, step, start, fields, held_objs, train_objs, layout, terms, data, log)
    if step % config.eval_every and step < config.steps:  # stopped by the clock between evaluations
        metrics = grid_checkpoint(model, config, step, start, fields, held_objs, train_objs, layout, terms, data, log)
    return metrics


def grid_checkpoint(model: GridDecoder, config: GridTrainConfig, step: int, start: float, fields: dict, held: torch.Tensor,
                    train: torch.Tensor, layout: dict, terms: dict, data: dict, log: Callable[[dict], None] | None) -> dict:
    """Steps 4-5 at `step`: evaluate held-out and (as many) training objects, log, rewrite the checkpoint."""
    on_train = evaluate_grid(model, fields, train[:max(len(held), 2)], layout)
    metrics = evaluate_grid(model, fields, held if len(held) >= 2 else train, layout)
    metrics.pop("errors_deg")
    metrics.update(split="heldout" if len(held) >= 2 else "train", steps=step, train_seconds=round(time.time() - start, 1),
                   train_pairs={k: on_train[k] for k in ("median_rotation_error_deg", "retrieval_top1", "pairs")})
    record = {"step": step, **terms, "loss": terms["bce"] + config.rgb_weight * terms["rgb_mse"], "time": metrics["train_seconds"],
              "median_rotation_error_deg": metrics["median_rotation_error_deg"], "retrieval_top1": metrics["retrieval_top1"],
              "train_rotation_error_deg": on_train["median_rotation_error_deg"], "train_retrieval_top1": on_train["retrieval_top1"]}
    with open(Path(config.out) / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    if log:
        log(record)
    train_record = {k: v for k, v in asdict(config).items() if k != "model"}
    save_checkpoint(Path(config.out) / "checkpoint.safetensors", model, Scene(), step=step, metrics=metrics, train=train_record,
                    extra={"data": data})
    return metrics


def load_grid(path) -> tuple[GridDecoder, dict]:
    """(net, record) from a grid-arm checkpoint, or one sentence."""
    ckpt = load_checkpoint(path)
    if ckpt.kind != GridDecoder.kind:
        raise RedcubeError(f"{path} holds a {ckpt.kind} checkpoint, not the grid arm; pass one written by redcube train-weightspace --arm grid.")
    model = GridDecoder(GridConfig(**ckpt.record["model"]["config"]))
    model.load_state_dict(ckpt.prefixed("model."))
    return model.eval(), ckpt.record

