"""Plots written to PNG (matplotlib, no display)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

from training.weightspace.train import CHANCE_ROTATION_ERROR_DEG

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(results: dict, path: Path, title: str, x: str = "time", held_out: str = "test_psnr") -> Path:
    """Train and held-out PSNR against wall-clock seconds (x="time") or steps (x="step"), a line pair per arm;
    held_out="test_psnr_pooled" plots the PSNR of all held-out pixels pooled instead of the mean over images."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, (arm, res) in enumerate(results.items()):
        t = [r[x] for r in res["curve"]]
        axes[0].plot(t, [r["train_psnr"] for r in res["curve"]], color=f"C{i}", label=arm)
        axes[1].plot(t, [r[held_out] for r in res["curve"]], color=f"C{i}", label=arm)
    pooled = held_out == "test_psnr_pooled"
    for ax, name in zip(axes, ("train (batch) PSNR", "held-out PSNR, all pixels pooled" if pooled else "held-out PSNR")):
        ax.set(xlabel="training time (s)" if x == "time" else "step", ylabel="dB", title=name)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path, title)


def plot_latent_experiment(results: dict, at_res: dict, images: dict, path: Path, title: str, rows: int = 3) -> Path:
    """The latent experiment on one page: held-out PSNR over training time (each arm at its own evaluation
    resolution) with each arm's final 512² PSNR, and the `rows` busiest held-out poses at 512²: ground truth | each arm."""
    arms = list(results)
    fig = plt.figure(figsize=(4 + 3 * (len(arms) + 1), 3 * rows))
    grid = fig.add_gridspec(rows, len(arms) + 2, width_ratios=[1.6] + [1] * (len(arms) + 1))
    ax = fig.add_subplot(grid[:, 0])
    for i, arm in enumerate(arms):
        curve = results[arm]["curve"]
        res = results[arm]["config"]["res"]
        ax.plot([r["time"] for r in curve], [r["test_psnr"] for r in curve], color=f"C{i}", label=f"{arm} (judged at {res}²)")
        ax.axhline(at_res[arm]["psnr"], color=f"C{i}", ls="--", lw=1, label=f"{arm} final at 512²: {at_res[arm]['psnr']:.2f} dB")
    ax.set(xlabel="training time (s)", ylabel="held-out PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    busiest = images["gt"].flatten(1).var(1).argsort(descending=True).tolist()  # many poses see only sky: show the busiest
    for r, k in enumerate(busiest[:rows]):
        for j, key in enumerate(["gt"] + arms):
            a = fig.add_subplot(grid[r, j + 1])
            a.imshow(images[key][k].numpy().clip(0, 1))
            a.set(xticks=[], yticks=[])
            if r == 0:
                a.set_title("ground truth 512²" if key == "gt" else key, fontsize=9)
    return _save(fig, path, title)


def plot_weightspace_run(job) -> Path:
    """A weight-space run's log.jsonl as curves.png beside its checkpoint: median relative-rotation error (held-out and
    training pairs, with the error of a uniformly random guess), same-object retrieval top-1 and the loss terms."""
    log = (job.out_dir / "log.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, log) if r.get("event") == "eval"]
    grid = job.kind == "weightspace-grid"
    losses = ("bce", "rgb_mse") if grid else ("recon", "ntx", "rot", "latent_l2")
    title = f"{'grid arm' if grid else 'weight-space autoencoder'} on {Path(job.parts['train'].data).name}"
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    step = [r["step"] for r in records]
    curves = ((axes[0], "median_rotation_error_deg", "held-out objects"), (axes[0], "train_rotation_error_deg", "training pairs"),
              (axes[1], "retrieval_top1", "held-out objects"), (axes[1], "train_retrieval_top1", "training pairs"))
    for ax, key, label in curves:
        ax.plot(step, [r[key] for r in records], label=label)
    chance = CHANCE_ROTATION_ERROR_DEG
    axes[0].axhline(chance, color="grey", ls="--", label=f"random rotation ({chance:.0f} deg)")
    for key in losses:
        axes[2].plot(step, [r[key] for r in records], label=key)
    axes[2].set_yscale("log")
    for ax, name in zip(axes, ("median relative-rotation error (deg)", "same-object retrieval top-1", "loss terms (batch)")):
        ax.set(xlabel="step", title=name)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, job.out_dir / "curves.png", title)


def _save(fig, path: Path, title: str) -> Path:
    """Title, tight layout, PNG at `path` (its folder made), figure closed."""
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
