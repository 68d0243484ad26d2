"""Plots written to PNG (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(results: dict, path: Path, title: str, x: str = "time") -> Path:
    """Train and held-out PSNR against wall-clock seconds (x="time") or steps (x="step"), a line pair per arm."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, (arm, res) in enumerate(results.items()):
        t = [r[x] for r in res["curve"]]
        color = f"C{i}"
        axes[0].plot(t, [r["train_psnr"] for r in res["curve"]], color=color, label=arm)
        axes[1].plot(t, [r["test_psnr"] for r in res["curve"]], color=color, label=arm)
    for ax, name in zip(axes, ("train (batch) PSNR", "held-out PSNR")):
        ax.set_xlabel("training time (s)" if x == "time" else "step")
        ax.set_ylabel("dB")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
