"""Pixel samples for the trainer: flattened (pose, pixel uv, colour) triples, the fixed-dataset mode
and the held-out test set.

Seeds: the held-out poses come from their own generator (`HELDOUT_SEED_OFFSET`, `AIMED_SEED_OFFSET`), the fixed dataset
from another, and stream producers from `stream.producer_seed`, so no two of them share a stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from renderer.camera import pixel_uv, sample_poses
from renderer.errors import RedcubeError
from renderer.scene import Scene
from renderer.worlds import world_poses

HELDOUT_SEED_OFFSET = 7_777_777
FIXED_SEED_OFFSET = 3_333_333
AIMED_SEED_OFFSET = 5_555_555
AIMED_JITTER_RAD = 0.4
"""An aimed camera looks at the cube's centre to within this (the view is 60° wide: the cube stays in sight)."""
AIMED_MARGIN = 0.2
"""Metres between an aimed camera and the cube."""
POSE_SETS = ("uniform", "aimed")


@dataclass
class PixelSet:
    """N pixel samples: poses [N, 5], uv [N, 2], targets [N, C]."""

    poses: torch.Tensor
    uv: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return len(self.target)

    @classmethod
    def from_frames(cls, poses: np.ndarray | torch.Tensor, images: np.ndarray | torch.Tensor) -> "PixelSet":
        """Every pixel of frames images [F, R, R, C] seen from poses [F, 5]."""
        poses, images = torch.as_tensor(poses), torch.as_tensor(images)
        f, r = images.shape[0], images.shape[1]
        uv = pixel_uv(r).repeat(f, 1)
        return cls(poses.repeat_interleave(r * r, dim=0), uv, images.reshape(f * r * r, -1))

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self), (size,), generator=generator)
        return self.poses[idx], self.uv[idx], self.target[idx]


def heldout_poses(scene: Scene, n: int, seed: int, pose_set: str = "uniform") -> torch.Tensor:
    """The held-out camera poses [n, 5]: fixed by the run seed, drawn from a generator nothing else uses.

    'uniform' draws from the training distribution (about a third of its views are sky only); 'aimed' places each
    camera outside the cube and turns it to the cube's centre within ±AIMED_JITTER_RAD, the views a user flying
    around the cube sees (its own seed, so the two sets share no pose)."""
    if pose_set == "uniform":
        return sample_poses(scene, n, torch.Generator().manual_seed(seed + HELDOUT_SEED_OFFSET))
    if pose_set == "aimed":
        return world_poses(scene, n, seed + AIMED_SEED_OFFSET, margin=AIMED_MARGIN, aim=True,
                           jitter_deg=math.degrees(AIMED_JITTER_RAD))
    raise RedcubeError(f"unknown pose set {pose_set!r}; choose one of {list(POSE_SETS)}.")


def fixed_pixels(rasterizer, res: int, n_samples: int, seed: int) -> PixelSet:
    """The blog's fixed dataset: N pixel samples drawn once (every pixel of ceil(N / res^2) random frames)."""
    frames = -(-n_samples // (res * res))
    poses = sample_poses(rasterizer.scene, frames, torch.Generator().manual_seed(seed + FIXED_SEED_OFFSET))
    rgb, _ = rasterizer.render(poses.numpy(), res)
    full = PixelSet.from_frames(poses, rgb)
    return PixelSet(full.poses[:n_samples], full.uv[:n_samples], full.target[:n_samples])
