"""The `scale` group of `redcube bench`: data-parallel training under torchrun (gloo) against one process.

Both runs are the real `redcube train`, launched by torchrun with the same global batch and step
budget, so they see the same total samples: samples/s (1 rank with all cores vs K ranks with a core
each) and final held-out PSNR side by side. The communication share comes from a torchrun child that
times the same DDP step with and without its gradient all-reduce (`no_sync`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from renderer.models import build_model
from renderer.scene import Scene
from training.distributed import Dist

RES, BATCH, STEPS = 32, 8192, 400  # enough steps that held-out PSNR is past its noisy start


def _torchrun(nproc: int, args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "torchrun"), "--standalone", "--nproc_per_node", str(nproc), *args]
    repo = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _train(nproc: int, out: Path) -> dict:
    """One `redcube train` under torchrun; samples/s (mean of the train records after the first) and held-out PSNR."""
    threads = max(1, (os.cpu_count() or 2) // nproc)
    args = ["--no-python", str(Path(sys.executable).parent / "redcube"), "train", "--res", str(RES),
            "--steps", str(STEPS), "--batch-size", str(BATCH), "--eval-every", str(STEPS), "--heldout", "16",
            "--threads", str(threads), "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    p = _torchrun(nproc, args)
    if p.returncode != 0:
        return {"error": p.stderr[-600:]}
    recs = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in recs if r.get("event") == "train"][1:]
    done = recs[-1]
    return {"ranks": nproc, "threads_per_rank": threads, "samples_per_s": sum(rates) / max(1, len(rates)),
            "test_psnr": done["test_psnr"], "test_psnr_pooled": done["test_psnr_pooled"], "steps": done["step"],
            "wall_s": round(time.perf_counter() - t0, 1)}


def _comm_child(steps: int = 20) -> dict:
    """Inside torchrun: seconds per DDP training step with and without the gradient all-reduce."""
    d = Dist.from_env()
    torch.manual_seed(0)
    model = build_model("posemlp", {"input": "plucker", "skip": True}, Scene())
    ddp = d.wrap(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(d.rank)
    poses, uv, target = (torch.rand(BATCH // d.world, width, generator=g) for width in (5, 2, 3))

    def step(sync: bool):
        with contextlib.nullcontext() if sync else ddp.no_sync():
            loss = torch.nn.functional.mse_loss(ddp(poses, uv), target)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def timed(sync: bool) -> float:
        for _ in range(3):
            step(sync)
        d.all_true(True)  # line the ranks up before timing
        t0 = time.perf_counter()
        for _ in range(steps):
            step(sync)
        return (time.perf_counter() - t0) / steps

    times = d.gather([timed(True), timed(False)])  # each rank's step seconds with and without the all-reduce
    d.close()
    sync_s, local_s = max(t[0] for t in times), max(t[1] for t in times)
    return {"step_s": sync_s, "step_s_without_allreduce": local_s, "comm_share": max(0.0, 1 - local_s / sync_s)}


def bench_scale(scene=None, nproc: int = 2) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory(prefix="redcube-scale-") as tmp:
        one = _train(1, Path(tmp) / "r1")
        many = _train(nproc, Path(tmp) / f"r{nproc}")
    p = _torchrun(nproc, ["--no-python", sys.executable, "-m", "app.bench_scale"])
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    comm = json.loads(lines[-1]) if p.returncode == 0 and lines else {"error": p.stderr[-600:]}
    figures = {"scale_1_rank": one, f"scale_{nproc}_ranks": many, "scale_comm": comm,
               "scale_setup": f"redcube train posemlp {RES}², global batch {BATCH}, {STEPS} steps, gloo, same total samples"}
    ratios = {}
    if "error" not in one and "error" not in many:
        # Both runs share this machine's cores (1 rank x all threads vs K ranks x 1 thread): 1.0 is ideal here.
        ratios[f"scale_samples_per_s_{nproc}_vs_1"] = many["samples_per_s"] / one["samples_per_s"]
        figures["scale_psnr_delta_db"] = many["test_psnr"] - one["test_psnr"]
    return figures, ratios


if __name__ == "__main__":  # a rank of the communication timing that bench_scale starts under torchrun
    out = _comm_child()
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(out), flush=True)
