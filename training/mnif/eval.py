"""Sample quality of a generative mNIF without any downloaded network: precision, recall, interpolation smoothness.

All comparisons are renders: the probe views are two fixed eye-level cameras that see the whole region where
the family's cubes live, at 32² (1 ray per pixel on both sides, 128 samples per ray).

- precision: share of diffusion samples whose render is within `threshold_db` of some world of the family: the
  three nearest worlds on the parameter grid (`renderer.worlds.parameter_grid`), each refined by a coordinate search
  over the six parameters (`refine_to_family`), the best kept. The grid alone is too coarse: 64 *real* training
  worlds, rasterized, score a grid-only precision of 0.25 at 20 dB (three levels an axis leave the cube
  centimetres off); refined, 0.9 and more (the search can still stall).
- recall: share of held-out worlds (rasterized) with a sample that close. With 64 samples in a six-parameter family
  this is low even for real data; `eval-mnif` reports the same figures for as many rasterized training worlds.
- interpolation smoothness: for pairs of training latents, `steps` evenly spaced latent interpolations are rendered;
  q_k is the PSNR of step k against the rasterized world at the matching interpolation of the two worlds'
  parameters (hue along the shorter arc); max_interp_jump_db is the largest |q_{k+1} - q_k| over all pairs and steps.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from renderer.models.mnif import MNIF
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from renderer.worlds import GRID_PER_AXIS, RANGES, WorldParams, family_box, parameter_grid, world_scene
from training.metrics import psnr

PROBES = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0], [2.0, 1.0, 0.0, math.pi / 2, 0.0]])
PROBE_RES = 32


def rasterize_worlds(params: list[WorldParams], base: Scene, r: Rasterizer | None = None) -> torch.Tensor:
    """Probe views [N, 2, R, R, 3] of many worlds through one rasterizer, `r` or a new one (set_world swaps the cube)."""
    if r is None:
        with Rasterizer(world_scene(params[0], base)) as r:
            return rasterize_worlds(params, base, r)
    out = []
    for p in params:
        r.set_world(world_scene(p, base))
        out.append(torch.from_numpy(r.render(PROBES.numpy(), PROBE_RES, supersample=1)[0]))
    return torch.stack(out)


@torch.no_grad()
def render_latents(model: MNIF, latents: torch.Tensor, base: Scene, samples: int = 128) -> torch.Tensor:
    """Probe views [N, 2, R, R, 3] of latents [N, H] (averaged network, volume renderer)."""
    from renderer.volume import render_views

    lo, hi = family_box(base)
    return torch.stack([render_views(model.average(phi).field, base, PROBES, PROBE_RES, lo, hi, samples).clamp(0, 1)
                        for phi in latents])


def pairwise_psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR [len(a), len(b)] between every pair of view sets [*, 2, R, R, 3] (MSE over both views)."""
    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    mse = (fa.pow(2).sum(1)[:, None] + fb.pow(2).sum(1)[None] - 2 * fa @ fb.T) / fa.shape[1]
    return -10 * torch.log10(mse.clamp_min(1e-12))


def refine_to_family(views: torch.Tensor, start: WorldParams, base: Scene, r: Rasterizer, step: dict[str, float],
                     moves: int = 24) -> tuple[float, WorldParams]:
    """PSNR of probe views [2, R, R, 3] against the closest world found from `start`: each move rasterizes the 12
    neighbours p +- step along one parameter and takes the best; with none better, the steps halve."""
    def score(ps: list[WorldParams]) -> torch.Tensor:
        return pairwise_psnr(views[None], rasterize_worlds(ps, base, r))[0]

    best, q, step = float(score([start])[0]), start, dict(step)
    for _ in range(moves):
        near = [_moved(q, k, sign * h) for k, h in step.items() for sign in (1, -1)]
        s = score(near)
        if float(s.max()) > best:
            best, q = float(s.max()), near[int(s.argmax())]
        else:
            step = {k: h / 2 for k, h in step.items()}
    return best, q


def _moved(p: WorldParams, name: str, delta: float) -> WorldParams:
    """p with one parameter moved, kept in RANGES (hue and yaw wrap round: a cube turned by 90 degrees is the same)."""
    lo, hi = RANGES[name]
    v = getattr(p, name) + delta
    v = v % hi if name in ("hue", "yaw_deg") else min(max(v, lo), hi)
    return replace(p, **{name: v})


def grid_step() -> dict[str, float]:
    """Half the default grid's spacing on each axis: the refinement's first step."""
    return {k: (hi - lo) / GRID_PER_AXIS[k] / 2 for k, (lo, hi) in RANGES.items()}


def precision_recall(sample_views: torch.Tensor, grid_views: torch.Tensor, heldout_views: torch.Tensor,
                     threshold_db: float, base: Scene, starts: int = 3) -> dict:
    """Precision from the grid refined by `refine_to_family`, recall against the held-out worlds (module docstring)."""
    grid, step = parameter_grid(), grid_step()
    to_grid = pairwise_psnr(sample_views, grid_views)
    with Rasterizer(world_scene(grid[0], base)) as r:  # from the 3 nearest grid worlds: one start alone can stall
        to_family = torch.tensor([max(refine_to_family(v, grid[int(i)], base, r, step)[0] for i in row.topk(starts).indices)
                                  for v, row in zip(sample_views, to_grid)])
    to_grid = to_grid.max(1).values
    to_held = pairwise_psnr(heldout_views, sample_views).max(1).values
    return {"precision": float((to_family >= threshold_db).float().mean()), "recall": float((to_held >= threshold_db).float().mean()),
            "precision_grid_only": float((to_grid >= threshold_db).float().mean()),
            "sample_to_family_psnr_median": float(to_family.median()),
            "sample_to_grid_psnr_median": float(to_grid.median()), "heldout_to_sample_psnr_median": float(to_held.median())}


def lerp_params(a: WorldParams, b: WorldParams, w: float) -> WorldParams:
    dh = ((b.hue - a.hue + 0.5) % 1.0) - 0.5
    va, vb = a.vector(), b.vector()
    v = va + w * (vb - va)
    return WorldParams((a.hue + w * dh) % 1.0, *map(float, v[1:]))


def interpolation_jumps(model: MNIF, latents: torch.Tensor, params: list[WorldParams], base: Scene, pairs: list[tuple[int, int]],
                        steps: int = 8) -> tuple[float, list[list[float]], list[torch.Tensor]]:
    """(max jump in dB, q per pair and step, rendered paths [steps, 2, R, R, 3] per pair)."""
    qs, paths = [], []
    for i, j in pairs:
        w = torch.linspace(0, 1, steps)
        lat = latents[i][None] * (1 - w[:, None]) + latents[j][None] * w[:, None]
        views = render_latents(model, lat, base)
        gt = rasterize_worlds([lerp_params(params[i], params[j], float(x)) for x in w], base)
        qs.append([psnr(v, g) for v, g in zip(views, gt)])
        paths.append(views)
    jump = max(abs(q[k + 1] - q[k]) for q in qs for k in range(len(q) - 1))
    return jump, qs, paths


def grid_views(base: Scene) -> torch.Tensor:
    return rasterize_worlds(parameter_grid(), base)
