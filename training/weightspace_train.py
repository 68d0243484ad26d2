"""Training and evaluating the weight-space autoencoder on an NGP field data set (`redcube ngp-dataset`).

  1. load the fields, split the objects (train / held-out), build the tokenizer (seeded points)
  2. per token group (hash grid, each Linear, [POS]) one scale: the std of its real values over the training fields;
     tokens are divided by it (the model sees unit-size values; `detokenize` after multiplying back)
  3. each step: a batch of view pairs (`PairSampler`, augmented), eq. (6) of seed 004, AdamW, gradient clip
  4. evaluate on every field of the held-out objects (no augmentation): median relative-rotation error (deg) over all
     ordered pairs of an object's rotations, same-object retrieval top-1 among all of them, reconstruction MSE
  5. save the model, the token points and scales in the one checkpoint format (`training.checkpoint`)
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
from renderer.quaternions import angle_between
from renderer.scene import Scene
from training.checkpoint import load_checkpoint, save_checkpoint
from training.ngp_dataset import load_fields
from training.schedules import cosine
from training.weightspace_data import PairSampler, split_objects
from training.weightspace_losses import loss_terms, recon_loss, relative_rotation
from training.weightspace_model import WeightSpaceAutoencoder, WeightSpaceConfig
from training.weightspace_tokens import Tokenizer, sample_token_points

KIND = "weightspace"
CHANCE_ROTATION_ERROR_DEG = 132.35
"""Median geodesic angle between a uniformly random rotation and any fixed one (the angle's CDF is
(t - sin t) / pi): what a guess that knows nothing scores on the median relative-rotation error."""


@dataclass
class WeightSpaceTrainConfig:
    data: str
    """Data set directory written by redcube ngp-dataset."""
    steps: int = 1000
    """Optimizer steps."""
    batch: int = 8
    """Objects (view pairs) per step."""
    lr: float = 3e-4
    """AdamW learning rate (the seed: 1e-4 with OneCycle)."""
    weight_decay: float = 1e-3
    """AdamW weight decay (the seed: 1e-3)."""
    clip: float = 5.0
    """Gradient-norm clip (the seed: 5)."""
    points: int = 380
    """Hash-token points (the seed: 380)."""
    n_pos: int = 10
    """[POS] tokens (the seed: 10)."""
    heldout: int = 0
    """Objects held out of training for the evaluation."""
    permute: bool = True
    """Augment by consistent MLP neuron permutations."""
    noise_std: float = 0.1
    """Multiplicative noise std of the augmentation (0: none)."""
    eval_every: int = 100
    """Steps between evaluations (held-out and training pairs), log records and checkpoints."""
    minutes: float = 0.0
    """Wall-clock budget (0: none); the run stops at `steps` or here, whichever comes first, and the learning rate
    follows whichever is further along."""
    warmup: float = 0.05
    """Share of the run spent warming the learning rate up linearly (then cosine to 5% of it)."""

    seed: int = 0
    out: str = "runs/weightspace"
    """Run directory."""
    model: WeightSpaceConfig = field(default_factory=WeightSpaceConfig)
    """The autoencoder's architecture."""

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = WeightSpaceConfig(**self.model)
        if min(self.steps, self.batch, self.points, self.n_pos, self.eval_every) < 1 or not self.lr > 0 or self.minutes < 0:
            raise RedcubeError("train-weightspace steps, batch, points, n_pos and eval_every must be positive, lr > 0 and "
                               "minutes not negative; fix the options.")


def token_scales(tokens: torch.Tensor, tokenizer: Tokenizer) -> torch.Tensor:
    """Step 2: one scale per token [C, 1]: the std of the real values of its group (tokenizer.nlk's l) over tokens [N, C, D]."""
    scales = torch.ones(tokenizer.n_tokens, 1)
    for group in tokenizer.nlk[:, 1].unique():
        rows = tokenizer.nlk[:, 1] == group
        values = tokens[:, rows][:, tokenizer.mask[rows]]
        if values.numel() > 1:
            scales[rows] = float(values.std()) + 1e-12
    return scales


@dataclass
class EvalSet:
    """Every field of some objects, tokens scaled: tokens [N, C, D], rotations [N, 4], object ids [N]."""
    tokens: torch.Tensor
    quaternions: torch.Tensor
    objects: torch.Tensor


def eval_set(fields: dict, tokenizer: Tokenizer, objects: torch.Tensor, scales: torch.Tensor) -> EvalSet:
    rows = torch.isin(fields["object_ids"], objects).nonzero().squeeze(1)
    return EvalSet(tokenizer.tokenize(fields["params"][rows]) / scales, fields["quaternions"][rows], fields["object_ids"][rows])


@torch.no_grad()
def encode_all(model: WeightSpaceAutoencoder, tokens: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Latents [N, C, L] of tokens [N, C, D], a chunk at a time (bounded memory)."""
    return torch.cat([model.encode(t) for t in tokens.split(chunk)])


@torch.no_grad()
def evaluate(model: WeightSpaceAutoencoder, es: EvalSet, mask: torch.Tensor) -> dict:
    """Step 4 without augmentation: median relative-rotation error (deg) over every ordered pair of two rotations of
    one object; retrieval top-1: each field's nearest other field (cosine, NT-Xent embedding) is of its own object;
    reconstruction MSE of the real token values."""
    was_training = model.training
    model.eval()
    z = encode_all(model, es.tokens)
    same = (es.objects[:, None] == es.objects[None]) & ~torch.eye(len(z), dtype=torch.bool)
    i, j = same.nonzero().unbind(1)
    pred = torch.cat([model.relative_rotation(z[a], z[b]) for a, b in zip(i.split(256), j.split(256))])
    err = torch.rad2deg(angle_between(relative_rotation(es.quaternions[i], es.quaternions[j]), pred))
    e = F.normalize(model.embedding(z), dim=1)
    sim = (e @ e.T).fill_diagonal_(-2.0)
    top1 = es.objects[sim.argmax(1)] == es.objects
    recon = sum(recon_loss(model.decode(c), t, mask) * len(c) for c, t in zip(z.split(32), es.tokens.split(32))) / len(z)
    model.train(was_training)
    return {"median_rotation_error_deg": float(err.median()), "retrieval_top1": float(top1.float().mean()),
            "recon_mse": float(recon), "pairs": len(i), "fields": len(z), "objects": int(es.objects.unique().numel()),
            "chance_rotation_error_deg": CHANCE_ROTATION_ERROR_DEG, "chance_retrieval_top1": chance_top1(es.objects)}


def chance_top1(objects: torch.Tensor) -> float:
    """Retrieval top-1 of a random neighbour: the share of a field's other fields that belong to its object."""
    counts = torch.bincount(objects - objects.min()).float()
    n = len(objects)
    return float((counts * (counts - 1)).sum() / (n * (n - 1))) if n > 1 else 0.0


def learning_rate(config: WeightSpaceTrainConfig, step: int, elapsed: float) -> float:
    """Linear warm-up, then cosine to 5%, over the run's progress (steps or minutes, whichever is further)."""
    done = max(step / config.steps, elapsed / (60 * config.minutes) if config.minutes else 0.0)
    if done < config.warmup:
        return config.lr * max(done / config.warmup, 0.01)
    return cosine(config.lr, (done - config.warmup) / max(1 - config.warmup, 1e-9))


def train_weightspace(config: WeightSpaceTrainConfig, log: Callable[[dict], None] | None = None) -> dict:
    """Steps 1-5; returns the metrics (held-out ones when objects were held out, else on the training objects).
    Every `eval_every` steps: held-out and training-pair metrics go to `log` and `out/log.jsonl`, and the checkpoint
    is rewritten, so a run stopped early leaves a usable model."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    fields, manifest = load_fields(Path(config.data))  # 1.
    train_objs, held_objs = split_objects(fields["object_ids"], config.heldout, config.seed)
    tokenizer = Tokenizer(manifest["layout"], sample_token_points(config.points, config.seed), config.n_pos)
    train_rows = torch.isin(fields["object_ids"], train_objs)
    scales = token_scales(tokenizer.tokenize(fields["params"][train_rows]), tokenizer)  # 2.
    sampler = PairSampler(fields, tokenizer, train_objs, config.permute, config.noise_std)
    batch_size = min(config.batch, len(train_objs))
    heldout_set = eval_set(fields, tokenizer, held_objs if len(held_objs) >= 2 else train_objs, scales)
    train_set = eval_set(fields, tokenizer, train_objs[:max(len(held_objs), 2)], scales)  # does it fit what it sees?
    model = WeightSpaceAutoencoder(config.model, tokenizer)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "log.jsonl").write_text("")
    start, step, metrics = time.time(), 0, {}
    split = "heldout" if len(held_objs) >= 2 else "train"
    data = {"seed": manifest["settings"]["seed"], "heldout_objects": held_objs.tolist()}  # which objects it never saw
    save = lambda at, terms: checkpoint(model, tokenizer, scales, config, at, start, heldout_set, train_set, terms, split, data, log)
    while step < config.steps and not (config.minutes and time.time() - start > 60 * config.minutes):  # 3.
        step += 1
        opt.param_groups[0]["lr"] = learning_rate(config, step, time.time() - start)
        b = sampler.batch(batch_size, gen)
        total, terms = loss_terms(model, b.tokens_a / scales, b.tokens_b / scales, b.q_a, b.q_b, tokenizer.mask)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        if step % config.eval_every == 0 or step == config.steps:
            metrics = save(step, {"loss": float(total.detach()), **terms, "lr": opt.param_groups[0]["lr"]})
    if step % config.eval_every and step < config.steps:  # stopped by the clock between evaluations
        metrics = save(step, {"loss": float(total.detach()), **terms, "lr": opt.param_groups[0]["lr"]})
    return metrics


def checkpoint(model, tokenizer: Tokenizer, scales: torch.Tensor, config: WeightSpaceTrainConfig, step: int, start: float,
               heldout_set: EvalSet, train_set: EvalSet, terms: dict, split: str, data: dict,
               log: Callable[[dict], None] | None) -> dict:
    """Steps 4-5 at `step`: evaluate, append the record to out/log.jsonl, rewrite the checkpoint; returns the metrics."""
    on_train = evaluate(model, train_set, tokenizer.mask)
    metrics = {**evaluate(model, heldout_set, tokenizer.mask), "split": split, "steps": step,
               "train_pairs": {k: on_train[k] for k in ("median_rotation_error_deg", "retrieval_top1", "pairs")},
               "train_seconds": round(time.time() - start, 1), "threads": torch.get_num_threads(), "tokens": tokenizer.describe()}
    record = {"step": step, **terms, "time": metrics["train_seconds"],
              **{k: metrics[k] for k in ("median_rotation_error_deg", "retrieval_top1", "recon_mse")},
              "train_rotation_error_deg": on_train["median_rotation_error_deg"], "train_retrieval_top1": on_train["retrieval_top1"]}
    with open(Path(config.out) / "log.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    if log:
        log(record)
    save_weightspace(Path(config.out) / "checkpoint.safetensors", model, tokenizer, scales, config, metrics, data)
    return metrics


def save_weightspace(path: Path, model: WeightSpaceAutoencoder, tokenizer: Tokenizer, scales: torch.Tensor,
                     config: WeightSpaceTrainConfig, metrics: dict, data: dict | None = None) -> Path:
    model.kind = KIND
    train = {k: v for k, v in asdict(config).items() if k != "model"}
    return save_checkpoint(path, model, Scene(), step=metrics.get("steps", config.steps), metrics=metrics, train=train,
                           extra_tensors={"tokens.points": tokenizer.points, "tokens.scales": scales},
                           extra={"tokenizer": {"layout": tokenizer.layout, "n_pos": int((tokenizer.kind == 2).sum())}, "data": data})


def load_weightspace(path) -> tuple[WeightSpaceAutoencoder, Tokenizer, torch.Tensor, dict]:
    """(model, tokenizer, token scales [C, 1], record) from a train-weightspace checkpoint, or one sentence."""
    ckpt = load_checkpoint(path)
    if ckpt.kind != KIND or "tokens.points" not in ckpt.tensors:
        raise RedcubeError(f"{path} holds a {ckpt.kind} checkpoint, not a weight-space autoencoder; pass one written by redcube train-weightspace.")
    spec = ckpt.record["tokenizer"]
    tokenizer = Tokenizer(spec["layout"], ckpt.tensors["tokens.points"], spec["n_pos"])
    model = WeightSpaceAutoencoder(WeightSpaceConfig(**ckpt.record["model"]["config"]), tokenizer)
    model.load_state_dict(ckpt.prefixed("model."))
    return model.eval(), tokenizer, ckpt.tensors["tokens.scales"], ckpt.record
