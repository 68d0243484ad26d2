"""`redcube bench --only ngpfields`: issue 7's field fitting on this machine.

- fields fitted per minute with the data set's default fit (`training.ngp_fields.FitConfig`, small field config),
  by wall clock and by the process's CPU time (the shared 2-core machine's contention is their ratio);
- each fitted field's render PSNR at 64² against its object's analytic field, through the shared volume renderer
  (4 world-space views, 2x2 supersampling, 128 samples per ray);
- the tokenizer's throughput (fields tokenized per second, 380 hash points + MLP + 10 [POS] tokens each);
- tokens per second through the weight-space encoder (default `WeightSpaceConfig`, batches of 4 fields, no grad).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from app.bench_mnif import seconds_each
from renderer.polycubes import polycube
from renderer.quaternions import random_quaternions
from renderer.scene import Scene
from training.ngp_fields import FitConfig, fit_field, render_psnr
from training.weightspace.model import WeightSpaceAutoencoder, WeightSpaceConfig
from training.weightspace.tokens import Tokenizer, sample_token_points

FIELDS = 3


def bench_ngpfields(scene: Scene) -> tuple[dict, dict]:
    """On one torch thread, as each `redcube ngp-dataset` worker fits (`run_bench` restores the thread count)."""
    torch.set_num_threads(1)
    fit, wall, cpu, psnrs, fields = FitConfig(), 0.0, 0.0, [], []
    for i in range(FIELDS):
        obj, q = polycube(10_000 + i, scene), random_quaternions(1, seed=10_000 + i)[0]
        t0, c0 = time.perf_counter(), time.process_time()
        field, _ = fit_field(obj, q, fit, seed=i, scene=scene)
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
        psnrs.append(render_psnr(field, obj, q, views=4, res=64, samples=128, supersample=2, seed=i))
        fields.append(field.flat())
    tok = Tokenizer(field.layout(), sample_token_points(380, seed=0))
    batch = torch.stack(fields * 11)[:32]
    t0 = time.perf_counter()
    tok.tokenize(batch)
    tok_s = time.perf_counter() - t0
    encoder = WeightSpaceAutoencoder(WeightSpaceConfig(), tok).eval()
    tokens = tok.tokenize(batch[:4])
    with torch.no_grad():
        encode_s = min(seconds_each(lambda: encoder.encode(tokens), 3))
    figs = {"ngp_fields": {"fields": FIELDS, "fit_steps": fit.steps, "points_per_step": fit.points,
                           "params_per_field": int(fields[0].numel()), "threads": torch.get_num_threads(),
                           "fields_per_minute_wall": round(FIELDS / wall * 60, 2), "fields_per_minute_cpu": round(FIELDS / cpu * 60, 2),
                           "render_psnr_64": [round(p, 2) for p in psnrs], "render_psnr_64_mean": round(sum(psnrs) / FIELDS, 2),
                           "reference": "analytic polycube field, volume-rendered (4 views, 2x2 supersampled, 128 samples)",
                           "tokenize_fields_per_s": round(len(batch) / tok_s, 1), "tokenizer": tok.describe(),
                           "encoder_tokens_per_s": round(tokens.shape[0] * tokens.shape[1] / encode_s, 1),
                           "encoder": dataclasses.asdict(WeightSpaceConfig())}}
    return figs, {"ngp_fit_cpu_vs_wall": cpu / wall}

