"""Fitting an mNIF to the cube-world family by auto-decoding (paper Algorithm 2), and fitting latents to unseen worlds.

The fitting path (plainly: this is what trains the network). Volume-rendering hundreds of worlds through
images is far too slow on a 2-core CPU, so the field is supervised directly on 3-D points with each
world's analytic field (`renderer.worlds.field_of_cubes`): occupancy of the cube and the ground slab
(binary cross-entropy on the occupancy logit) and, inside and near surfaces, the rasterizer's shaded
surface colour including the grid lines (MSE). Points are drawn near the cube's faces, near the plane
(denser around grid lines) and uniformly in the scene box.

Evaluation never looks at points: each world's latent is averaged into one SIREN (eq. 9), rendered by
the volume renderer (`renderer.volume`) at 64² from held-out camera poses, and compared with the
rasterizer's image of that world (PSNR, both anti-aliased with the same 2x2 sub-pixel samples).

Auto-decoding, step by step:
  1. draw a batch of training worlds j and their latents phi_j (one row of a table, N(0, 0.01^2) at first)
  2. draw points and the analytic targets of those worlds
  3. loss = BCE(occupancy) + rgb_weight * MSE(colour | near/inside surfaces) + latent_decay * |phi_j|^2
  4. one Adam step on the bases, T and the batch's latents together
An unseen world is fitted the same way with the bases and T frozen: only its latent moves.

Both methods run in the one loop (`training.engine`); meta-learning (Algorithm 1, `training/mnif/meta.py`) shares
this file's evaluation and checkpoint; `evaluate` takes the fit for unseen worlds as a `LatentFit` and records which one it used.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from renderer.errors import RedcubeError
from renderer.models import build_model
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.scene import Scene
from renderer.volume import render_views
from renderer.worlds import (Cubes, WorldParams, family_box, field_of_cubes, heldout_worlds, train_worlds, world_poses,
                             world_scene)
from training.checkpoint import Checkpoint, load, save_checkpoint
from training.engine import Engine, Fit, Hooks, Plan
from training.metrics import psnr
from training.run_dir import inside

EVAL_POSE_SEED = 5150


@dataclass
class MNIFTrainConfig:
    worlds: int = 256
    """Training worlds (the family's seeded training split)."""
    steps: int | None = None
    """Step budget (None: until `minutes`)."""
    minutes: float | None = None
    """Wall-clock budget in minutes."""
    batch_worlds: int = 16
    """Worlds per step."""
    points: int = 2048
    """Points per world per step."""
    lr: float = 5e-4
    """Peak Adam learning rate of the bases and T (cosine to 5% of it; 5e-4 trained the shipped assets/mnif)."""
    latent_lr: float = 3e-3
    """Adam learning rate of the latents (3e-3 trained the shipped assets/mnif)."""
    latent_init_std: float = 0.01
    """Latents start as N(0, std^2) (paper Algorithm 2)."""
    latent_decay: float = 1e-4
    """Weight decay on the latents: latent_decay * |phi|^2 per world in the loss."""
    rgb_weight: float = 10.0
    """Weight of the colour MSE against the occupancy BCE."""
    fit_steps: int = 300
    """Adam steps when fitting a latent to an unseen world."""
    fit_lr: float = 1e-2
    """Learning rate when fitting a latent to an unseen world."""
    eval_worlds: int = 16
    """Training worlds rendered in the evaluation (the first ones) and held-out worlds fitted."""
    eval_views: int = 4
    """Held-out camera poses per world."""
    eval_res: int = 64
    """Evaluation resolution."""
    samples: int = 128
    """Volume-rendering samples per ray."""
    supersample: int = 2
    """Rays per pixel side, box-filtered (the rasterizer renders with the same factor for the comparison)."""
    threads: int = 1
    """torch threads (the machine has 2 cores shared by everyone)."""
    seed: int = 0
    """Seeds the weights, the latents, the worlds drawn each step and their points."""
    out: str = "runs/mnif"
    """Run directory."""
    init_from: str | None = None
    """An auto-decoded mNIF checkpoint to continue from (its bases, T and latents; a fresh learning-rate schedule)."""

    def __post_init__(self):
        Plan.of(self)  # a budget, finite and in range
        if min(self.worlds, self.batch_worlds, self.points, self.eval_worlds, self.eval_views) < 1:
            raise RedcubeError("worlds, batch_worlds, points, eval_worlds and eval_views must be positive; fix the options.")


# ---- data: points and their analytic targets ---------------------------------------------------------
def sample_points(base: Scene, cubes: Cubes, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """n points per world [B, n, 3] with occupancy, colour and a colour mask: 40% near the cube's faces, 30% near the
    plane (half of them near grid lines), 30% uniform in the box."""
    b = len(cubes.size)
    n_cube, n_ground = int(0.4 * n), int(0.3 * n)
    n_box = n - n_cube - n_ground
    lo, hi = (torch.tensor(v) for v in family_box(base))
    scale = torch.tensor([0.002, 0.01, 0.04])
    # near the cube: a point on a random face, pushed along the normal by N(0, s^2)
    face_uv = torch.rand(b, n_cube, 3, generator=gen) * 2 - 1
    axis = torch.randint(0, 3, (b, n_cube), generator=gen)
    sign = torch.randint(0, 2, (b, n_cube), generator=gen) * 2.0 - 1.0
    onehot = F.one_hot(axis, 3).float()
    surf = face_uv * (1 - onehot) + onehot * sign[..., None]  # on the unit cube's surface
    push = scale[torch.randint(0, 3, (b, n_cube), generator=gen)] * torch.randn(b, n_cube, generator=gen)
    half = cubes.size[:, None, None] / 2
    local = surf * half + onehot * sign[..., None] * push[..., None]
    cube_pts = cubes.to_world(local)
    # colour target: the face the point belongs to (its surface point, 1 mm inside)
    cube_src = cubes.to_world(surf * half - onehot * sign[..., None] * 1e-3)
    # near the plane, half of the points around grid lines
    g = base.ground_half_size
    xz = (torch.rand(b, n_ground, 2, generator=gen) * 2 - 1) * (g + 0.05)
    near_line = torch.rand(b, n_ground, generator=gen) < 0.5
    snapped = torch.round(xz) + 0.03 * torch.randn(b, n_ground, 2, generator=gen)
    xz = torch.where(near_line[..., None], snapped, xz)
    y = scale[torch.randint(0, 3, (b, n_ground), generator=gen)] * torch.randn(b, n_ground, generator=gen)
    ground_pts = torch.stack([xz[..., 0], y, xz[..., 1]], -1)
    ground_src = torch.stack([xz[..., 0], torch.full_like(y, -1e-3), xz[..., 1]], -1)
    box_pts = lo + torch.rand(b, n_box, 3, generator=gen) * (hi - lo)
    points = torch.cat([cube_pts, ground_pts, box_pts], 1)
    occ, _ = field_of_cubes(base, cubes, points)
    _, rgb_src = field_of_cubes(base, cubes, torch.cat([cube_src, ground_src], 1))
    _, rgb_box = field_of_cubes(base, cubes, box_pts)
    rgb = torch.cat([rgb_src, rgb_box], 1)
    # colour counts near surfaces (the renderer blends a little of it) and inside; free space has none
    in_ground_square = (ground_src[..., [0, 2]].abs() <= g).all(-1)
    mask = torch.cat([torch.ones(b, n_cube, dtype=torch.bool), in_ground_square, occ[:, n_cube + n_ground:] > 0], 1)
    return {"points": points, "occ": occ, "rgb": rgb, "mask": mask.float()}


def point_errors(model: MNIF, phi: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per point [B, N]: occupancy BCE and colour squared error (mean over RGB; `batch["mask"]` says where it counts)."""
    raw = model.raw(batch["points"], phi)
    bce = F.binary_cross_entropy_with_logits(raw[..., 3], batch["occ"], reduction="none")
    return bce, ((raw[..., :3] + 0.5 - batch["rgb"]) ** 2).mean(-1)


def point_loss(model: MNIF, phi: torch.Tensor, batch: dict, rgb_weight: float) -> tuple[torch.Tensor, dict]:
    """Step 3 without the latent term: BCE on occupancy + rgb_weight * masked colour MSE."""
    bce, err = point_errors(model, phi, batch)
    bce = bce.mean()
    mse = (err * batch["mask"]).sum() / batch["mask"].sum().clamp_min(1)
    return bce + rgb_weight * mse, {"bce": float(bce.detach()), "rgb_mse": float(mse.detach())}


# ---- the training loop both methods share -----------------------------------------------------------
def select(cubes: Cubes, idx: torch.Tensor) -> Cubes:
    """The cubes of the worlds `idx` [B] out of a larger set."""
    return Cubes(cubes.center[idx], cubes.size[idx], cubes.yaw[idx], cubes.color[idx])


REFERENCE_BASES = 64
"""The M at which the shared learning rate was tuned; T's rate is scaled by REFERENCE_BASES / M (see `network_groups`)."""


def network_groups(model: MNIF, lr: float) -> list[dict]:
    """Adam groups of the bases and of T, both on the cosine schedule (`peak`).

    An Adam step of size lr on T moves every coefficient alpha_m (about 1/M) by about lr, and the averaged weights sum
    M such moves of bases scaled by sqrt(M) (see renderer.models.mnif): T's part of their change grows like M. Its
    rate is therefore lr * REFERENCE_BASES / M, which keeps the averaged network's step flat in M (the bases' own
    steps average to lr for any M). With one rate, M = 256 at lr 5e-4 kept the occupancy BCE at chance (0.66) for
    400 steps; with this one it fell to 0.40.
    """
    t_lr = lr * REFERENCE_BASES / model.config.bases
    bases = [p for n, p in model.named_parameters() if not n.startswith("project.")]
    return [{"params": bases, "lr": lr, "peak": lr}, {"params": list(model.project.parameters()), "lr": t_lr, "peak": t_lr}]


class MNIFTrainer(Engine):
    """The mNIF kind, auto-decoding (steps 1-4 above); `MetaTrainer` (training/mnif/meta.py) swaps the step.
    Evaluation renders worlds (minutes on a CPU): it runs once, at the end, and is not training time."""

    kind = "mnif"
    method = "autodecode"
    eval_is_training_time = False

    def __init__(self, config: MNIFTrainConfig, model_config: MNIFConfig, base: Scene | None = None, hooks: Hooks | None = None,
                 resume: bool = False, overwrite: bool = False):
        self.config, self.model_config, self.scene = config, model_config, base or Scene()
        self.joins_run = inside(config.init_from, config.out)  # continuing the run in --out writes over it
        super().__init__(Plan.of(config, log_every=50, eval_every=None), hooks, resume, overwrite)

    def setup(self, ckpt) -> None:
        c = self.config
        self.params = train_worlds(c.worlds)
        self.cubes = Cubes.of([world_scene(p, self.scene) for p in self.params])
        self.model = build_model("mnif", self.model_config, self.scene)
        self.optimizer = torch.optim.Adam([*network_groups(self.model, c.lr), *self.own_groups()])
        self.earlier = continue_from(c, self.model, self.latents) if c.init_from and ckpt is None else None

    def own_groups(self) -> list[dict]:
        """1. the latent table, N(0, std^2) at first (paper Algorithm 2), at its own constant rate."""
        n, h = len(self.params), self.model_config.latent_dim
        self.latents = torch.nn.Parameter(torch.randn(n, h, generator=self.gen) * self.config.latent_init_std)
        return [{"params": [self.latents], "lr": self.config.latent_lr}]

    def restore(self, ckpt) -> None:
        super().restore(ckpt)
        with torch.no_grad():
            self.latents.copy_(ckpt.tensors["latents"])
        self.earlier = ckpt.record.get(self.method)

    def train_step(self) -> tuple[torch.Tensor, dict]:
        c = self.config
        idx = torch.randperm(len(self.params), generator=self.gen)[:c.batch_worlds]  # 1.
        batch = sample_points(self.scene, select(self.cubes, idx), c.points, self.gen)  # 2.
        phi = self.latents[idx]
        loss, parts = point_loss(self.model, phi, batch, c.rgb_weight)  # 3.
        return loss + c.latent_decay * (phi ** 2).sum(-1).mean(), parts  # 4. is the engine's optimizer step

    def train_latents(self) -> torch.Tensor:
        """The training worlds' latents [N, H] (what the diffusion model learns)."""
        return self.latents.detach()

    def live_tensors(self) -> dict[str, torch.Tensor]:
        """A viewer following the run renders worlds: it needs their latents with the weights."""
        return {"latents": self.latents.detach()}

    def latent_fit(self) -> LatentFit | None:
        """How the evaluation fits unseen worlds (None: Adam from the best training latent)."""
        return None

    def eval_record(self, train_loss: float) -> dict:
        self.model.eval()
        fitted = evaluate(self.model, self.train_latents(), self.params, self.scene, self.config, self.latent_fit())
        self.model.train()
        return {"train_loss": train_loss, **fitted, "method": self.method, "steps": self.step,
                "train_seconds": round(self.elapsed, 1), "threads": self.config.threads}

    def saved_extra(self) -> tuple[dict, dict]:
        return mnif_parts(self.train_latents(), self.method, self.earlier)


# ---- auto-decoding -------------------------------------------------------------------------------------
@torch.no_grad()
def continue_from(config: MNIFTrainConfig, model: MNIF, latents: torch.nn.Parameter) -> dict:
    """Load `config.init_from` into model and latents (one sentence if it does not fit this run); returns what it was."""
    old, old_latents, record = load_mnif(config.init_from)
    if record["method"] != "autodecode" or record["model"]["config"] != asdict(model.config) or old_latents.shape != latents.shape:
        raise RedcubeError(f"{config.init_from} is not an auto-decoded mNIF of this size ({record['model']['config']}, "
                           f"{len(old_latents)} worlds); continue from one trained with the same --bases, --latent-dim, "
                           "--width, --hidden-layers and --worlds.")
    model.load_state_dict(old.state_dict())
    latents.copy_(old_latents)
    m, chain = record.get("metrics", {}), record.get("autodecode") or {}
    return {"continued_from": str(config.init_from), "steps_before": m.get("steps", 0) + chain.get("steps_before", 0),
            "seconds_before": m.get("train_seconds", 0) + chain.get("seconds_before", 0),
            "train_psnr_before": m.get("train_psnr"), "heldout_psnr_before": m.get("heldout_psnr")}


# ---- latents of unseen worlds ------------------------------------------------------------------------
def fit_latents(model: MNIF, scenes: list[Scene], base: Scene, steps: int = 300, lr: float = 1e-2, points: int = 2048,
                rgb_weight: float = 10.0, latent_decay: float = 1e-4, init: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Latents [B, H] for unseen worlds: the auto-decoding loss with the bases and T frozen, only the latents move.
    `init`: one start [H] for every world, or one per world [B, H] (default zeros)."""
    gen = torch.Generator().manual_seed(seed)
    cubes = Cubes.of(scenes)
    h = model.config.latent_dim
    phi = torch.nn.Parameter(init.expand(len(scenes), h).clone() if init is not None else torch.zeros(len(scenes), h))
    opt = torch.optim.Adam([{"params": [phi], "lr": lr, "peak": lr}], lr=lr)

    def loss() -> torch.Tensor:
        fit, _ = point_loss(model, phi, sample_points(base, cubes, points, gen), rgb_weight)
        return fit + latent_decay * (phi ** 2).sum(-1).mean()

    for p in model.parameters():
        p.requires_grad_(False)
    try:
        Fit(model, opt, loss, steps).run()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return phi.detach()


# ---- rendering and evaluation --------------------------------------------------------------------------
@torch.no_grad()
def render_latent(model: MNIF, phi: torch.Tensor, scene: Scene, poses: torch.Tensor, res: int = 64,
                  samples: int = 128, supersample: int = 2) -> torch.Tensor:
    """Images [V, res, res, 3] of the world with latent phi [H]: averaged once (eq. 9), then volume-rendered."""
    net = model.average(phi)
    lo, hi = family_box(scene)
    return render_views(net.field, scene, poses, res, lo, hi, samples, supersample=supersample).clamp(0, 1)


def eval_poses(scene: Scene, views: int, index: int, split: str) -> torch.Tensor:
    """The held-out camera poses of one world: seeded, at least 0.5 m outside its cube and turned towards it (never used in training)."""
    return world_poses(scene, views, seed=EVAL_POSE_SEED + index + (100_000 if split == "heldout" else 0), margin=0.5, aim=True)


def world_psnrs(model: MNIF, latents: torch.Tensor, params: list[WorldParams], base: Scene, split: str,
                config: MNIFTrainConfig) -> list[float]:
    """Per world: PSNR of its volume renders against the rasterizer over its held-out views."""
    from renderer.rasterizer import Rasterizer

    out = []
    for i, (p, phi) in enumerate(zip(params, latents)):
        scene = world_scene(p, base)
        poses = eval_poses(scene, config.eval_views, i, split)
        pred = render_latent(model, phi, scene, poses, config.eval_res, config.samples, config.supersample)
        with Rasterizer(scene) as r:
            gt = torch.from_numpy(r.render(poses.numpy(), config.eval_res, supersample=config.supersample)[0])
        out.append(psnr(pred, gt))
    return out


@dataclass
class LatentFit:
    """How `evaluate` fits latents to unseen worlds, and what the evaluation JSON says about it."""
    fn: Callable[[MNIF, list[Scene], Scene, int], torch.Tensor]
    """fn(model, scenes, base, seed) -> latents [B, H] of those worlds."""
    info: dict
    """The fitting method and its settings, as recorded under eval.fit."""


@torch.no_grad()
def best_starts(model: MNIF, latents: torch.Tensor, scenes: list[Scene], base: Scene, points: int = 2048,
                rgb_weight: float = 10.0, seed: int = 0, chunk: int = 64) -> torch.Tensor:
    """Per unseen world, the training latent [B, H] whose field has the lowest point loss on that world's points."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for scene in scenes:
        batch = sample_points(base, Cubes.of([scene]), points, gen)
        losses = []
        for phi in latents.split(chunk):
            bce, err = point_errors(model, phi, {k: v.expand(len(phi), *v.shape[1:]) for k, v in batch.items()})
            losses.append(bce.mean(1) + rgb_weight * (err * batch["mask"]).sum(1) / batch["mask"].sum().clamp_min(1))
        out.append(latents[torch.cat(losses).argmin()])
    return torch.stack(out)


def adam_fit(config: MNIFTrainConfig, latents: torch.Tensor) -> LatentFit:
    """The auto-decoding fit: `fit_steps` Adam steps on the latent alone, from the training latent `best_starts` picks
    (from the mean latent it lands in worse basins: 17.1 against 18.7 dB on 8 held-out worlds, shipped mNIF)."""
    def fn(model, scenes, base, seed):
        init = best_starts(model, latents, scenes, base, seed=seed)
        return fit_latents(model, scenes, base, config.fit_steps, config.fit_lr, init=init, seed=seed)
    return LatentFit(fn, {"method": "adam on the latent, bases and T frozen", "steps": config.fit_steps, "lr": config.fit_lr,
                          "init": "the training latent with the lowest point loss on the world's points"})


def evaluate(model: MNIF, latents: torch.Tensor, params: list[WorldParams], base: Scene, config: MNIFTrainConfig,
             fit: LatentFit | None = None) -> dict:
    """Training worlds' reconstruction and held-out worlds fitted by `fit` (default: Adam from the best training latent),
    by rendering."""
    n = config.eval_worlds
    train = world_psnrs(model, latents[:n], params[:n], base, "train", config)
    held = heldout_worlds()[:n]
    fit = fit or adam_fit(config, latents)
    t = time.time()
    fitted = fit.fn(model, [world_scene(p, base) for p in held], base, config.seed + 1)
    fit_s = time.time() - t
    heldout = world_psnrs(model, fitted, held, base, "heldout", config)
    return {"train_psnr": sum(train) / len(train), "heldout_psnr": sum(heldout) / len(heldout),
            "train_psnr_min": min(train), "heldout_psnr_min": min(heldout),
            "eval": {"res": config.eval_res, "views_per_world": config.eval_views, "worlds": n,
                     "samples_per_ray": config.samples, "supersample": config.supersample,
                     "fit": fit.info, "fit_seconds": round(fit_s, 1)}}


# ---- checkpoints ---------------------------------------------------------------------------------------
def save_mnif(path: Path, model: MNIF, latents: torch.Tensor, base: Scene, config: MNIFTrainConfig, step: int, metrics: dict,
              method: str = "autodecode", method_record: dict | None = None, method_tensors: dict | None = None) -> Path:
    """An mNIF checkpoint written outside a training run (the trainers write the same through the engine)."""
    tensors, extra = mnif_parts(latents, method, method_record, method_tensors)
    return save_checkpoint(path, model, base, step=step, metrics=metrics, train=asdict(config), extra_tensors=tensors, extra=extra)


def mnif_parts(latents: torch.Tensor, method: str, method_record: dict | None = None,
               method_tensors: dict | None = None) -> tuple[dict, dict]:
    """What the one mNIF checkpoint holds beyond the network: training latents [N, H] and the method, a method's own
    settings under record[method] and its tensors as `method.name` (meta-learning: its rates). (tensors, record)"""
    return ({"latents": latents, **{f"{method}.{k}": v for k, v in (method_tensors or {}).items()}},
            {"family": {"split": "train", "worlds": len(latents)}, "method": method,
             **({method: method_record} if method_record is not None else {})})


def load_mnif(path) -> tuple[MNIF, torch.Tensor, dict]:
    """(model, training latents [N, H], record) from an mNIF checkpoint, or one sentence."""
    return load(path, "mnif")


def mnif_from(ckpt: Checkpoint) -> tuple[MNIF, torch.Tensor, dict]:
    """The mNIF loader (training.checkpoint.LOADERS). record["method"] says how it was trained (files from before the
    method was recorded are auto-decoded)."""
    ckpt.record.setdefault("method", "autodecode")
    return ckpt.build_model().eval(), ckpt.tensors["latents"], ckpt.record
