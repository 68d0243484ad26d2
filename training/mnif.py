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

Meta-learning (Algorithm 1, `training/mnif_meta.py`) shares this file's loop (`run_budget`), evaluation and
checkpoint; `evaluate` takes the fit for unseen worlds as a `LatentFit` and records which one it used.
"""

from __future__ import annotations

import json
import math
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
from training.checkpoint import load_checkpoint, save_checkpoint
from training.metrics import psnr
from training.schedules import cosine

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
    lr: float = 2e-4
    """Peak Adam learning rate of the bases and T (cosine to 5% of it)."""
    latent_lr: float = 2e-3
    """Adam learning rate of the latents."""
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
    out: str = "runs/mnif"
    """Run directory."""
    init_from: str | None = None
    """An auto-decoded mNIF checkpoint to continue from (its bases, T and latents; a fresh learning-rate schedule)."""

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise RedcubeError("train-mnif needs a budget; pass --steps or --minutes.")
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
def lr_at(step: int, total: int | None, peak: float) -> float:
    if not total:
        return peak
    return cosine(peak, step / total)


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


def run_budget(config: MNIFTrainConfig, opt: torch.optim.Optimizer, step_fn: Callable[[], tuple[torch.Tensor, dict]],
               on_record: Callable[[dict], None] | None = None, method: str = "autodecode") -> tuple[int, list[dict], float]:
    """The loop both training methods share: a cosine on every param group with a `peak`, step budget or wall clock,
    a record every 50 steps. step_fn() runs one step (it steps `opt`) and returns its loss and loss parts;
    returns (steps, log, seconds)."""
    start, step, log = time.time(), 0, []
    budget_s = config.minutes * 60 if config.minutes is not None else math.inf
    while (config.steps is None or step < config.steps) and time.time() - start < budget_s:
        # a minutes budget runs the cosine over its elapsed fraction, in steps of 0.1%
        progress = step / config.steps if config.steps is not None else int((time.time() - start) / budget_s * 1000) / 1000
        for group in opt.param_groups:
            if "peak" in group:
                group["lr"] = cosine(group["peak"], progress)
        loss, parts = step_fn()
        step += 1
        if step % 50 == 0 or step == 1:
            rec = {"event": "train", "method": method, "step": step, "loss": float(loss.detach()), **parts,
                   "time": time.time() - start}
            log.append(rec)
            if on_record:
                on_record(rec)
    return step, log, time.time() - start


def finish_run(model: MNIF, latents: torch.Tensor, params: list[WorldParams], base: Scene, config: MNIFTrainConfig, run: tuple,
               on_record: Callable[[dict], None] | None = None, fit: LatentFit | None = None, method: str = "autodecode",
               method_record: dict | None = None, method_tensors: dict | None = None) -> dict:
    """Save `out/checkpoint.safetensors` and the log, evaluate by renders (fitting held-out worlds with `fit`), save again."""
    step, log, train_s = run
    model.eval()
    out = Path(config.out)
    path = out / "checkpoint.safetensors"
    save = lambda m: save_mnif(path, model, latents, base, config, step, m, method, method_record, method_tensors)
    metrics = {"method": method, "steps": step, "train_seconds": round(train_s, 1), "threads": config.threads}
    save(metrics)  # the weights are safe before the slow evaluation
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    metrics = {**evaluate(model, latents, params, base, config, on_record, fit), **metrics}
    save(metrics)
    return metrics


# ---- auto-decoding -------------------------------------------------------------------------------------
def train_mnif(config: MNIFTrainConfig, model_config: MNIFConfig, base: Scene,
               on_record: Callable[[dict], None] | None = None) -> dict:
    """Auto-decode the training worlds (steps 1-4), then evaluate and save `out/checkpoint.safetensors`."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    params = train_worlds(config.worlds)
    cubes_all = Cubes.of([world_scene(p, base) for p in params])
    model = build_model("mnif", model_config, base)
    latents = torch.nn.Parameter(torch.randn(len(params), model_config.latent_dim, generator=gen) * config.latent_init_std)
    earlier = continue_from(config, model, latents) if config.init_from else None
    opt = torch.optim.Adam([*network_groups(model, config.lr), {"params": [latents], "lr": config.latent_lr}])

    def step() -> tuple[torch.Tensor, dict]:
        idx = torch.randperm(len(params), generator=gen)[:config.batch_worlds]  # 1.
        batch = sample_points(base, select(cubes_all, idx), config.points, gen)  # 2.
        phi = latents[idx]
        loss, parts = point_loss(model, phi, batch, config.rgb_weight)  # 3.
        loss = loss + config.latent_decay * (phi ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()  # 4.
        return loss, parts

    run = run_budget(config, opt, step, on_record)
    return finish_run(model, latents.detach(), params, base, config, run, on_record, method_record=earlier)


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
    opt = torch.optim.Adam([phi], lr=lr)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for s in range(steps):
            opt.param_groups[0]["lr"] = lr_at(s, steps, lr)
            loss, _ = point_loss(model, phi, sample_points(base, cubes, points, gen), rgb_weight)
            loss = loss + latent_decay * (phi ** 2).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
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


def ground_truth(scene: Scene, poses: torch.Tensor, res: int, supersample: int) -> torch.Tensor:
    from renderer.rasterizer import Rasterizer

    with Rasterizer(scene) as r:
        rgb, _ = r.render(poses.numpy(), res, supersample=supersample)
    return torch.from_numpy(rgb)


def world_psnrs(model: MNIF, latents: torch.Tensor, params: list[WorldParams], base: Scene, split: str,
                config: MNIFTrainConfig) -> list[float]:
    """Per world: PSNR of its volume renders against the rasterizer over its held-out views."""
    out = []
    for i, (p, phi) in enumerate(zip(params, latents)):
        scene = world_scene(p, base)
        poses = eval_poses(scene, config.eval_views, i, split)
        pred = render_latent(model, phi, scene, poses, config.eval_res, config.samples, config.supersample)
        out.append(psnr(pred, ground_truth(scene, poses, config.eval_res, config.supersample)))
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
             on_record: Callable[[dict], None] | None = None, fit: LatentFit | None = None) -> dict:
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
    metrics = {"train_psnr": sum(train) / len(train), "heldout_psnr": sum(heldout) / len(heldout),
               "train_psnr_min": min(train), "heldout_psnr_min": min(heldout),
               "eval": {"res": config.eval_res, "views_per_world": config.eval_views, "worlds": n,
                        "samples_per_ray": config.samples, "supersample": config.supersample,
                        "fit": fit.info, "fit_seconds": round(fit_s, 1)}}
    if on_record:
        on_record({"event": "eval", **metrics})
    return metrics


# ---- checkpoints ---------------------------------------------------------------------------------------
def save_mnif(path: Path, model: MNIF, latents: torch.Tensor, base: Scene, config: MNIFTrainConfig, step: int, metrics: dict,
              method: str = "autodecode", method_record: dict | None = None, method_tensors: dict | None = None) -> Path:
    """The one mNIF checkpoint: weights, training latents [N, H], the method; a method's own settings under record[method]
    and its tensors as `method.name` (meta-learning: its rates)."""
    return save_checkpoint(path, model, base, step=step, metrics=metrics, train=asdict(config),
                           extra_tensors={"latents": latents, **{f"{method}.{k}": v for k, v in (method_tensors or {}).items()}},
                           extra={"family": {"split": "train", "worlds": len(latents)}, "method": method,
                                  **({method: method_record} if method_record is not None else {})})


def load_mnif(path) -> tuple[MNIF, torch.Tensor, dict]:
    """(model, training latents [N, H], record) from an mNIF checkpoint, or one sentence. record["method"] says how it was
    trained (files from before the method was recorded are auto-decoded)."""
    ckpt = load_checkpoint(path)
    if ckpt.kind != "mnif" or "latents" not in ckpt.tensors:
        raise RedcubeError(f"{path} holds a {ckpt.kind} checkpoint, not an mNIF; pass a checkpoint written by redcube train-mnif.")
    ckpt.record.setdefault("method", "autodecode")
    model = ckpt.build_model()
    model.eval()
    return model, ckpt.tensors["latents"], ckpt.record
