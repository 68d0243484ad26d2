"""`redcube bench` groups. Each returns (figures, ratios); ratios compare things measured side by side in
the same run (alternating, best of several repeats), because a shared 2-core machine is noisy."""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from app.bench_mnif import bench_mnif
from app.bench_ngp import bench_ngpfields
from app.bench_scale import bench_scale
from app.bench_vae import bench_vae
from app.bench_viewport import bench_viewport
from renderer.camera import Camera, pixel_uv, sample_poses
from renderer.hashgrid import HashGrid, HashGridConfig
from renderer.models import build_model
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from training.stream import StreamConfig
from training.trainer import TrainConfig, Trainer

RASTER_RES = (32, 64, 256, 512)


def _rate(fn, units: float, min_s: float = 0.5, repeats: int = 3) -> float:
    """Best units/s over `repeats` timing windows of at least min_s each (fn warmed up once)."""
    fn()
    best = 0.0
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while (dt := time.perf_counter() - t0) < min_s or n == 0:
            fn()
            n += 1
        best = max(best, n * units / dt)
    return best


def bench_raster(scene: Scene) -> tuple[dict, dict]:
    poses = sample_poses(scene, 8, torch.Generator().manual_seed(0)).numpy()
    figs = {}
    with Rasterizer(scene) as r:
        for res in RASTER_RES:
            figs[f"raster_renders_per_s_{res}"] = round(_rate(lambda: r.render(poses, res), len(poses)), 1)
            figs[f"raster_renders_per_s_{res}_no_aa"] = round(_rate(lambda: r.render(poses, res, supersample=1), len(poses)), 1)
    figs["raster_supersample"] = scene.supersample
    return figs, {}


def _matmul_chain(widths: list[int]):
    """A plain chain of matmuls + ReLU with the given layer widths: the FLOP-equal yardstick."""
    ws = [torch.randn(a, b) / a ** 0.5 for a, b in zip(widths[:-1], widths[1:])]

    def run(x):
        for w in ws[:-1]:
            x = torch.relu(x @ w)
        return x @ ws[-1]
    return run


def bench_posemlp(scene: Scene, n: int = 1 << 14) -> tuple[dict, dict]:
    """posemlp inference pixels/s; the blog's model against a matmul chain of the same shapes (same FLOPs)."""
    torch.manual_seed(0)
    pose = Camera(0.5, 1.5, 0.3).pose().expand(n, -1)
    uv = pixel_uv(128)[:n]
    model = build_model("posemlp", {}, scene).eval()
    shipped = build_model("posemlp", {"input": "plucker", "skip": True}, scene).eval()
    c = model.config
    d_in = 6 * (1 + 2 * c.n_freqs)
    chain, x = _matmul_chain([d_in] + [c.width] * c.layers + [c.out_channels]), torch.randn(n, d_in)
    m = y = p = 0.0
    with torch.inference_mode():
        for _ in range(2):  # alternate so both see the same machine state
            m = max(m, _rate(lambda: model(pose, uv), n))
            y = max(y, _rate(lambda: chain(x), n))
            p = max(p, _rate(lambda: shipped(pose, uv), n))
    figs = {"posemlp_pixels_per_s": round(m), "matmul_chain_pixels_per_s": round(y),
            "posemlp_plucker_skip_pixels_per_s": round(p), "posemlp_ms_per_frame_64": round(1000 * 4096 / m, 2)}
    return figs, {"posemlp_vs_matmul": round(m / y, 3), **_bench_options(model, pose, uv)}


def _bench_options(model, pose, uv) -> dict:
    """torch.compile and bfloat16 against the plain eager fp32 model, side by side."""
    n = len(uv)
    with torch.inference_mode():
        eager = _rate(lambda: model(pose, uv), n)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = _rate(lambda: model(pose, uv), n)
    out = {"posemlp_bf16_vs_fp32": round(bf16 / eager, 3)}
    try:
        compiled = torch.compile(model)
        with torch.inference_mode():
            comp = _rate(lambda: compiled(pose, uv), n)  # its warm-up call compiles, outside the timing
            eager = max(eager, _rate(lambda: model(pose, uv), n))
        out["posemlp_compile_vs_eager"] = round(comp / eager, 3)
    except Exception as e:  # a missing compiler is a finding, not a crash
        out["posemlp_compile_vs_eager"] = f"unavailable: {type(e).__name__}"
    return out


def bench_train(scene: Scene, res: int = 32, steps: int = 80, batch: int = 8192) -> tuple[dict, dict]:
    """Trainer samples/s streaming fresh renders vs the same amount of data pre-rendered in memory."""
    stream = StreamConfig()
    base = TrainConfig(res=res, steps=steps, batch_size=batch, eval_every=10 ** 9, log_every=10 ** 9,
                       heldout=1, checkpoint_every_s=1e9, stream=stream,
                       fixed_samples=stream.frames_per_buffer * res * res)
    arms = {"stream": dict(data="stream"), "memory": dict(data="fixed"), "compiled": dict(data="fixed", compile=True)}
    rates = {k: [] for k in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(3):  # alternate the arms; keep each one's best
            for mode, kw in arms.items():
                cfg = dataclasses.replace(base, **kw, out_dir=str(Path(tmp) / f"{mode}{rep}"))
                t = Trainer(cfg, scene=scene)
                t.run(until_step=2)  # warm-up (and compile) outside the timing
                t0_steps, t0_time = t.step, t.elapsed
                t.run()
                rates[mode].append((t.step - t0_steps) * batch / (t.elapsed - t0_time))
    best = {k: max(v) for k, v in rates.items()}
    figs = {f"train_samples_per_s_{k}": round(v) for k, v in best.items()}
    figs.update(train_res=res, train_batch=batch)
    return figs, {"train_stream_vs_memory": round(best["stream"] / best["memory"], 3),
                  "train_compile_vs_eager": round(best["compiled"] / best["memory"], 3)}


class _PerLevelHashReference(torch.nn.Module):
    """A plain pure-PyTorch hash encoding in nerfstudio's style, for when nerfstudio is not installed: every
    level hashed with the same primes into one nn.Parameter table, autograd through the indexing."""

    def __init__(self, n_levels: int, base: int, scale: float, log2_t: int, feats: int):
        super().__init__()
        self.size = 2 ** log2_t
        self.scalings = torch.tensor([base * scale ** i for i in range(n_levels)])
        self.offsets = torch.arange(n_levels) * self.size
        self.table = torch.nn.Parameter(torch.rand(n_levels * self.size, feats) * 2e-4 - 1e-4)

    def _hash(self, c):
        h = c * torch.tensor([1, 2654435761, 805459861])
        return ((h[..., 0] ^ h[..., 1] ^ h[..., 2]) % self.size) + self.offsets

    def forward(self, x):
        s = x[:, None, :] * self.scalings[:, None]  # [N, L, 3]
        f = torch.floor(s)
        t = s - f
        f = f.long()
        out = 0
        for k in range(8):
            bits = torch.tensor([(k >> d) & 1 for d in range(3)])
            w = torch.where(bits.bool(), t, 1 - t).prod(-1, keepdim=True)
            out = out + w * self.table[self._hash(f + bits)]
        return out.flatten(1)


def _reference_encoding(n_levels: int, base: int, scale: float, log2_t: int, feats: int):
    """nerfstudio's pure-PyTorch HashEncoding when it imports (bench environment only), else the plain reference."""
    try:
        from nerfstudio.field_components.encodings import HashEncoding
    except Exception:  # not installed, or one of its many dependencies is missing
        return _PerLevelHashReference(n_levels, base, scale, log2_t, feats), "plain per-level reference in app/bench.py (nerfstudio not importable)"
    top = int(round(base * scale ** (n_levels - 1)))
    enc = HashEncoding(num_levels=n_levels, min_res=base, max_res=top, log2_hashmap_size=log2_t,
                       features_per_level=feats, implementation="torch")
    import nerfstudio

    return enc, f"nerfstudio {getattr(nerfstudio, '__version__', '')} HashEncoding (implementation='torch')".replace("  ", " ")


def bench_hashgrid(scene: Scene, n: int = 1 << 15) -> tuple[dict, dict]:
    """Hash-grid forward+backward points/s: ours (eager and torch.compile-fused) against nerfstudio's pure-PyTorch
    HashEncoding on the same points, alternating."""
    torch.manual_seed(0)
    cfg = HashGridConfig(n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.5)
    ours, fused = HashGrid(cfg), HashGrid(cfg, fused=True)
    ref, ref_name = _reference_encoding(16, 16, 1.5, 19, 2)
    x = torch.rand(n, 3)

    def step(enc):
        enc.zero_grad(set_to_none=True)
        enc(x).square().sum().backward()

    rates = {"ours": 0.0, "ours_fused": 0.0, "reference": 0.0}
    for _ in range(2):  # alternate so all see the same machine state
        for name, enc in (("ours", ours), ("ours_fused", fused), ("reference", ref)):
            rates[name] = max(rates[name], _rate(lambda: step(enc), n, min_s=1.0, repeats=2))
    figs = {"hashgrid_points_per_s": round(rates["ours"]), "hashgrid_fused_points_per_s": round(rates["ours_fused"]),
            "hashgrid_reference_points_per_s": round(rates["reference"]), "hashgrid_reference": ref_name,
            "hashgrid_config": "16 levels x 2 features, T = 2^19, base 16, scale 1.5, forward+backward, 32k points, cpu",
            "hashgrid_backend": ours.backend}
    best = max(rates["ours"], rates["ours_fused"])
    return figs, {"hashgrid_vs_reference": round(best / rates["reference"], 3),
                  "hashgrid_eager_vs_reference": round(rates["ours"] / rates["reference"], 3)}


def bench_gui(scene: Scene) -> tuple[dict, dict]:
    from app.gui.bench import gui_bench

    return gui_bench(), {}


GROUPS = {"raster": bench_raster, "posemlp": bench_posemlp, "train": bench_train, "hashgrid": bench_hashgrid,
          "vae": bench_vae, "mnif": bench_mnif, "scale": bench_scale, "gui": bench_gui, "ngpfields": bench_ngpfields,
          "viewport": bench_viewport}


def run_bench(only: list[str] | None, scene: Scene, log=print) -> dict:
    result = {"device": "cuda:" + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "figures": {}, "ratios": {}}
    threads = torch.get_num_threads()
    for name in only or list(GROUPS):
        t0 = time.perf_counter()
        figs, ratios = GROUPS[name](scene)
        torch.set_num_threads(threads)  # a group may time fewer threads (ngpfields, viewport)
        result["figures"].update(figs)
        result["ratios"].update(ratios)
        log(f"bench {name}: {time.perf_counter() - t0:.0f}s")
    return result
