"""Sample quality of a generative mNIF without any downloaded network: precision, recall, interpolation smoothness.

All comparisons are renders: the probe views are two fixed eye-level cameras that see the whole region where
the family's cubes live, at 32² (1 ray per pixel on both sides, 128 samples per ray).

- precision: share of diffusion samples whose render is within `threshold_db` of some world on the dense parameter
  grid (`renderer.worlds.parameter_grid`: PSNR(sample render, rasterized grid world) >= threshold over both views).
- recall: share of held-out worlds (rasterized) with a sample that close.
- interpolation smoothness: for pairs of training latents, `steps` evenly spaced latent interpolations are rendered;
  q_k is the PSNR of step k against the rasterized world at the matching interpolation of the two worlds'
  parameters (hue along the shorter arc); max_interp_jump_db is the largest |q_{k+1} - q_k| over all pairs and steps.
"""

from __future__ import annotations

import math

import torch

from renderer.models.mnif import MNIF
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from renderer.worlds import WorldParams, family_box, parameter_grid, world_scene
from training.metrics import psnr

PROBES = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0], [2.0, 1.0, 0.0, math.pi / 2, 0.0]])
PROBE_RES = 32


def rasterize_worlds(params: list[WorldParams], base: Scene) -> torch.Tensor:
    """Probe views [N, 2, R, R, 3] of many worlds through one rasterizer (set_world swaps the cube)."""
    out = []
    with Rasterizer(world_scene(params[0], base)) as r:
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


def precision_recall(sample_views: torch.Tensor, grid_views: torch.Tensor, heldout_views: torch.Tensor,
                     threshold_db: float) -> dict:
    to_grid = pairwise_psnr(sample_views, grid_views).max(1).values
    to_held = pairwise_psnr(heldout_views, sample_views).max(1).values
    return {"precision": float((to_grid >= threshold_db).float().mean()), "recall": float((to_held >= threshold_db).float().mean()),
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
