"""`redcube bench --only viewport`: issue 15's real-time figures for the shipped NGP field, on aimed held-out poses.

- `ngp_fps_128`, `ngp_fps_256`: whole network frames per second through the app's inference path (`render_image` with
  the model's own chunk, the fused C kernel, 2 threads: what the viewport uses with no training running);
- `ratios.ngp_fast_vs_module`: that path against the module forward (the same model with the fused kernel off) at
  256², the two alternated on the same poses, best of a few windows each;
- `ngp_evals_per_ray` and `ngp_ns_per_eval`: field evaluations per ray at 256² and the kernel's CPU time per
  evaluation on one thread (thread CPU time, so other load on the machine disturbs it little);
- `gui_network_fps_flying`, `gui_network_res_flying`, `gui_refine_ms`: the window under Xvfb with the NGP default at
  256² and an NGP training run in the background whose weights the view follows, once the run is past its warm-up
  (app.gui.bench); `*_warmup`: the same during the run's first seconds, while its field is a fog marched everywhere.
"""

from __future__ import annotations

import time

import torch

from app.video import infer_chunk
from renderer.render import render_image
from renderer.scene import Scene
from training.checkpoint import load_checkpoint
from training.data import heldout_poses

POSES = 8
RESOLUTIONS = (128, 256)


def bench_viewport(scene: Scene) -> tuple[dict, dict]:
    from app.gui.app import default_checkpoint
    from app.gui.bench import run_under_xvfb

    path = default_checkpoint()
    ckpt = load_checkpoint(path)
    if ckpt.kind != "ngp":
        return {"viewport_error": f"the shipped default {path.name} is not an NGP field"}, {}
    model = ckpt.build_model().eval()
    poses = heldout_poses(ckpt.scene, POSES, 0, "aimed")
    figs, ratios = _inference(model, poses)  # on 2 threads, then 1 (`run_bench` restores the thread count)
    gui = run_under_xvfb("app.gui.bench", ["--child-viewport", path, 8.0])  # measure_s: 8 s of flying with training
    figs["checkpoint"] = str(path.name)
    if "error" in gui:
        figs["gui_error"] = gui["error"]
        return figs, ratios
    figs.update(gui_network_fps_flying=round(gui["training"]["network_fps"], 2),
                gui_network_res_flying=round(gui["training"]["network_res_mean"], 1),
                gui_refine_ms=round(sorted(gui["refine_ms"])[len(gui["refine_ms"]) // 2], 1),
                gui_network_fps_flying_warmup=round(gui["warmup"]["network_fps"], 2),
                gui_network_res_flying_warmup=round(gui["warmup"]["network_res_mean"], 1),
                gui_detail=gui)
    return figs, ratios


def _frames_per_s(model, poses, res: int, seconds: float = 1.5) -> float:
    """Whole frames per second over the poses, repeated for at least `seconds`."""
    n, t0 = 0, time.perf_counter()
    while (dt := time.perf_counter() - t0) < seconds or n < len(poses):
        render_image(model, poses[n % len(poses)], res, chunk=infer_chunk(model))
        n += 1
    return n / dt


def _inference(model, poses) -> tuple[dict, dict]:
    torch.set_num_threads(2)
    for p in poses[:2]:
        render_image(model, p, 64, chunk=infer_chunk(model))  # builds the kernel outside the timing
    figs = {f"ngp_fps_{res}": round(max(_frames_per_s(model, poses, res) for _ in range(2)), 2) for res in RESOLUTIONS}
    fast = module = 0.0
    for _ in range(2):  # alternate the two paths so both see the same machine
        model.fused = False
        module = max(module, _frames_per_s(model, poses, 256, seconds=3.0))
        model.fused = True
        fast = max(fast, _frames_per_s(model, poses, 256))
    figs["ngp_module_fps_256"] = round(module, 2)
    torch.set_num_threads(1)
    evals, cpu = 0.0, float("inf")
    for _ in range(2):
        t0, n = time.thread_time(), 0.0
        for p in poses:
            render_image(model, p, 256, chunk=infer_chunk(model))
            n += model.last_evals * 256 * 256
        cpu, evals = min(cpu, time.thread_time() - t0), n
    figs.update(ngp_evals_per_ray=round(evals / (len(poses) * 256 * 256), 2), ngp_ns_per_eval=round(cpu / evals * 1e9, 1),
                poses=f"{len(poses)} aimed held-out poses (seed 0)")
    return figs, {"ngp_fast_vs_module": round(fast / module, 3)}
