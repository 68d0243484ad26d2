"""Held-out evaluation of a trained network against the rasterizer: PSNR/SSIM per pose and the images."""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from renderer.camera import POSE_DIM, Camera, check_res
from renderer.errors import RedcubeError
from renderer.numbers import as_float, is_real
from renderer.rasterizer import Rasterizer
from renderer.render import render_image
from renderer.scene import Scene
from training.metrics import mse_to_psnr, psnr, ssim


@dataclass
class Evaluation:
    poses: torch.Tensor  # [N, 5]
    gt: torch.Tensor  # [N, R, R, 3]
    pred: torch.Tensor  # [N, R, R, 3]

    def summary(self) -> dict:
        per_pose = [psnr(p, g) for p, g in zip(self.pred, self.gt)]
        mse = float(((self.pred - self.gt) ** 2).mean())
        # Pooled PSNR (all pixels of the set at once) is the headline: per-image means are flattered by easy
        # views (a sky-only view scores far above any view of the cube).
        return {"psnr_pooled": mse_to_psnr(mse), "psnr": psnr(self.pred, self.gt), "ssim": ssim(self.pred, self.gt), "mse": mse,
                "psnr_median": float(np.median(per_pose)), "n": len(self.poses),
                "res": int(self.gt.shape[1]), "psnr_per_pose": [round(v, 3) for v in per_pose]}


def evaluate(model: nn.Module, scene: Scene, poses: torch.Tensor, res: int, rasterizer: Rasterizer | None = None) -> Evaluation:
    """Render poses [N, 5] with the network and the rasterizer at res x res (a `rasterizer` passed in stays open)."""
    res = check_res(res)
    with (nullcontext(rasterizer) if rasterizer is not None else Rasterizer(scene)) as rast:
        gt = torch.from_numpy(rast.render(poses.numpy(), res)[0])
    return Evaluation(poses, gt, predict(model, poses, res))


def predict(model: nn.Module, poses: torch.Tensor, res: int) -> torch.Tensor:
    """Network images [N, R, R, C] for poses [N, 5], on the CPU, clamped to [0, 1]."""
    return torch.stack([render_image(model, p, res).float().cpu().clamp(0, 1) for p in poses])


MAX_POSES = 100_000


def read_json(path: Path, what: str, expected: str):
    """A user's JSON file, or one sentence: missing, a directory, binary or not JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RedcubeError(f"{what} {path} does not exist; pass {expected}.") from None
    except IsADirectoryError:
        raise RedcubeError(f"{what} {path} is a directory; pass a file holding {expected}.") from None
    except UnicodeDecodeError:
        raise RedcubeError(f"{what} {path} is not text (binary data); pass a file holding {expected}.") from None
    except OSError as e:
        raise RedcubeError(f"cannot read {what} {path} ({e.strerror}); pass a readable file holding {expected}.") from None
    except json.JSONDecodeError as e:
        raise RedcubeError(f"{what} {path} is not valid JSON ({e.msg} at line {e.lineno}); fix the file.") from None
    except RecursionError:
        raise RedcubeError(f"{what} {path} is nested too deeply to read; pass {expected}.") from None


def load_poses(path: str | Path, scene: Scene) -> torch.Tensor:
    """A poses file: a JSON list of {"x", "z", "yaw"} (optional "y", "pitch"), each inside the scene's bounds."""
    path = Path(path)
    items = read_json(path, "poses file", 'a JSON list of {"x", "z", "yaw"} objects')
    if not isinstance(items, list) or not items:
        raise RedcubeError(f"poses file {path} must hold a non-empty JSON list of {{\"x\", \"z\", \"yaw\"}} objects.")
    if len(items) > MAX_POSES:
        raise RedcubeError(f"poses file {path} holds {len(items)} poses, over the {MAX_POSES} one evaluation renders; split the file.")
    poses = []
    for i, it in enumerate(items):
        defaults = {"y": scene.height[0], "pitch": float(np.radians(scene.pitch_deg[0]))}
        values = {k: it.get(k, defaults.get(k)) for k in ("x", "z", "yaw", "y", "pitch")} if isinstance(it, dict) else {}
        if not values or not all(is_real(v) for v in values.values()):
            raise RedcubeError(f"pose {i} in {path} is malformed; each entry needs numeric \"x\", \"z\" and \"yaw\".")
        cam = Camera(**{k: as_float(v) for k, v in values.items()})
        problems = cam.problems(scene)
        if problems:
            raise RedcubeError(f"pose {i} in {path} is outside the scene: {'; '.join(problems)}; fix the file.")
        poses.append(cam.pose())
    return torch.stack(poses).reshape(-1, POSE_DIM)
