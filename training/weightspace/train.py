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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from renderer.errors import RedcubeError
from renderer.quaternions import angle_between
from renderer.scene import Scene
from training.checkpoint import Checkpoint, load
from training.ngp_dataset import load_fields
from training.engine import Engine, Hooks, Plan
from training.weightspace.data import PairSampler, same_pairs, split_objects
from training.weightspace.losses import loss_terms, recon_loss, relative_rotation
from training.weightspace.model import WeightSpaceAutoencoder, WeightSpaceConfig
from training.weightspace.tokens import Tokenizer, sample_token_points

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
    threads: int = 1
    """torch threads (1 leaves the other core to the app and other jobs)."""
    seed: int = 0
    """Seeds the split, the token points, the batches and the augmentation."""
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
    i, j = same_pairs(es.objects)
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


class WeightSpaceTrainer(Engine):
    """The weight-space kind (steps 1-5 above): evaluation, a log record and the checkpoint every `eval_every` steps,
    so a run stopped early leaves a usable model."""

    kind = "weightspace"
    config_skip = ("model",)

    def __init__(self, config: WeightSpaceTrainConfig, hooks: Hooks | None = None, resume: bool = False, overwrite: bool = False):
        self.config, self.scene = config, Scene()
        plan = Plan.of(config, minutes=config.minutes or None, warmup_share=config.warmup, log_every=config.eval_every,
                       save_on_eval=True)
        super().__init__(plan, hooks, resume, overwrite)

    def setup(self, ckpt) -> None:
        c = self.config
        fields, manifest = load_fields(Path(c.data))  # 1.
        train_objs, held_objs = split_objects(fields["object_ids"], c.heldout, c.seed)
        self.tokenizer = Tokenizer(manifest["layout"], sample_token_points(c.points, c.seed), c.n_pos)
        train_rows = torch.isin(fields["object_ids"], train_objs)
        self.scales = token_scales(self.tokenizer.tokenize(fields["params"][train_rows]), self.tokenizer)  # 2.
        self.sampler = PairSampler(fields, self.tokenizer, train_objs, c.permute, c.noise_std)
        self.batch_size = min(c.batch, len(train_objs))
        self.heldout_set = eval_set(fields, self.tokenizer, held_objs if len(held_objs) >= 2 else train_objs, self.scales)
        self.train_set = eval_set(fields, self.tokenizer, train_objs[:max(len(held_objs), 2)], self.scales)  # does it fit what it sees?
        self.split = "heldout" if len(held_objs) >= 2 else "train"
        self.data = {"seed": manifest["settings"]["seed"], "heldout_objects": held_objs.tolist()}  # which objects it never saw
        self.model, self.terms = WeightSpaceAutoencoder(c.model, self.tokenizer), {}
        self.optimizer = torch.optim.AdamW([{"params": self.model.parameters(), "lr": c.lr, "peak": c.lr}], lr=c.lr,
                                           weight_decay=c.weight_decay)

    def train_step(self) -> tuple[torch.Tensor, dict]:
        """3. eq. (6) of seed 004 on a batch of augmented view pairs."""
        b, scales = self.sampler.batch(self.batch_size, self.gen), self.scales
        total, self.terms = loss_terms(self.model, b.tokens_a / scales, b.tokens_b / scales, b.q_a, b.q_b, self.tokenizer.mask)
        return total, self.terms

    def eval_record(self, train_loss: float) -> dict:
        """4. held-out (and training-pair) figures; the train terms ride along for the curves."""
        mask = self.tokenizer.mask
        on_train = evaluate(self.model, self.train_set, mask)
        metrics = {**evaluate(self.model, self.heldout_set, mask), "split": self.split, "steps": self.step,
                   "train_pairs": {k: on_train[k] for k in ("median_rotation_error_deg", "retrieval_top1", "pairs")},
                   "train_seconds": round(self.elapsed, 1), "threads": torch.get_num_threads(), "tokens": self.tokenizer.describe()}
        return {"loss": train_loss, "lr": self.lr(), **self.terms, **metrics,
                "train_rotation_error_deg": on_train["median_rotation_error_deg"], "train_retrieval_top1": on_train["retrieval_top1"]}

    def saved_extra(self) -> tuple[dict, dict]:
        tokens = {"tokens.points": self.tokenizer.points, "tokens.scales": self.scales}
        tokenizer = {"layout": self.tokenizer.layout, "n_pos": int((self.tokenizer.kind == 2).sum())}
        return tokens, {"tokenizer": tokenizer, "data": self.data}


def train_weightspace(config: WeightSpaceTrainConfig, log: Callable[[dict], None] | None = None) -> dict:
    """Steps 1-5; returns the metrics (held-out ones when objects were held out, else on the training objects)."""
    return WeightSpaceTrainer(config, Hooks(on_record=log)).run()


def load_weightspace(path) -> tuple[WeightSpaceAutoencoder, Tokenizer, torch.Tensor, dict]:
    """(model, tokenizer, token scales [C, 1], record) from a weight-space checkpoint, or one sentence."""
    return load(path, WeightSpaceAutoencoder.kind)


def weightspace_from(ckpt: Checkpoint) -> tuple[WeightSpaceAutoencoder, Tokenizer, torch.Tensor, dict]:
    """The weight-space loader (training.checkpoint.LOADERS)."""
    spec = ckpt.record["tokenizer"]
    tokenizer = Tokenizer(spec["layout"], ckpt.tensors["tokens.points"], spec["n_pos"])
    model = WeightSpaceAutoencoder(WeightSpaceConfig(**ckpt.record["model"]["config"]), tokenizer)
    model.load_state_dict(ckpt.prefixed("model."))
    return model.eval(), tokenizer, ckpt.tensors["tokens.scales"], ckpt.record
