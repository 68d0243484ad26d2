"""`redcube bench --only mnif`: the mNIF paper's efficiency claims on this machine, side by side in one run.

- render fps at 64² (1 ray per pixel, 128 samples) of one world for M = 16, 64 and 256 bases: the latent is
  averaged into one SIREN (eq. 9) per world, so the frame cost should not grow with M
  (`mnif_fps_m256_vs_m16`, ~1 when the claim holds); the averaging itself is timed apart;
- learnable parameters (bases + T) against inference parameters (one averaged SIREN), the paper's table columns;
- DDIM latent sampling time (50 steps) for 1 and 16 samples, with the shipped diffusion model when present.
Rounds alternate between the M values (best of repeats) so that background load hits them alike.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from renderer.camera import Camera
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.scene import Scene
from renderer.volume import render_views
from renderer.worlds import family_box
from training.mnif.diffusion import DenoiserConfig, LatentDiffusion

BASES = (16, 64, 256)
SHIPPED_DIFFUSION = Path(__file__).resolve().parent.parent / "assets" / "mnif" / "diffusion.safetensors"


def seconds_each(fn, repeats: int) -> list[float]:
    """Wall-clock seconds of each of `repeats` calls of fn (the bench groups keep the best)."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_mnif(scene: Scene, repeats: int = 3) -> tuple[dict, dict]:
    torch.manual_seed(0)
    pose = Camera(x=0.0, z=2.0, yaw=0.0).pose()[None]
    lo, hi = family_box(scene)
    models = {m: MNIF(MNIFConfig(bases=m), scene).eval() for m in BASES}
    phi = 0.01 * torch.randn(MNIFConfig().latent_dim)
    nets = {m: models[m].average(phi) for m in BASES}
    times = {m: [] for m in BASES}
    avg_ms = {m: [] for m in BASES}
    with torch.no_grad():
        for _ in range(repeats):  # alternate the M values round by round
            for m in BASES:
                times[m] += seconds_each(lambda: render_views(nets[m].field, scene, pose, 64, lo, hi, 128), 1)
                avg_ms[m] += [1000 * t for t in seconds_each(lambda: models[m].average(phi), 3)]
    figs: dict = {"threads": torch.get_num_threads(), "device": "cpu", "res": 64, "samples_per_ray": 128}
    for m in BASES:
        counts = models[m].parameter_counts()
        figs[f"mnif_m{m}"] = {"fps_64": 1.0 / min(times[m]), "average_ms": min(avg_ms[m]),
                              "learnable_params": counts["learnable"], "inference_params": counts["inference"]}
    if SHIPPED_DIFFUSION.exists():
        ld, which = LatentDiffusion.load(SHIPPED_DIFFUSION), "shipped (assets/mnif/diffusion.safetensors)"
    else:
        latents = torch.randn(32, MNIFConfig().latent_dim)
        ld, which = LatentDiffusion.for_latents(latents, DenoiserConfig(latent_dim=latents.shape[1])), "untrained (same architecture)"
    ld.sample(1, steps=50)
    figs["latent_sampling"] = {"model": which, "ddim_steps": 50,
                               "ms_1": 1000 * min(seconds_each(lambda: ld.sample(1, steps=50), repeats)),
                               "ms_16": 1000 * min(seconds_each(lambda: ld.sample(16, steps=50), repeats))}
    ratios = {"mnif_fps_m256_vs_m16": figs["mnif_m256"]["fps_64"] / figs["mnif_m16"]["fps_64"],
              "mnif_learnable_vs_inference_params_m256": figs["mnif_m256"]["learnable_params"] / figs["mnif_m256"]["inference_params"],
              "mnif_sample16_vs_sample1_time": figs["latent_sampling"]["ms_16"] / figs["latent_sampling"]["ms_1"]}
    assert all(math.isfinite(v) for v in ratios.values())
    return figs, ratios
