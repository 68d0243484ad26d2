"""The grid arm's learner: a small 3-D convolutional net that reads an NGP field's coarse hash levels as a voxel grid.

  x   = features / scale                                 [B, levels * F, res, res, res]  (training.weightspace.grid, step 2)
  h   = (Conv3d 3^3 -> ReLU) x depth                      local context: a polycube cell spans ~4 voxels at 16^3
  out = Conv3d 1^3 (h)                                   [B, 4, ...]: occupancy logit, colour logits per voxel

Convolutions commute with translations and, nearly, with rotations of the grid, so what the net learns about one
object in one pose carries to other objects and poses; training turns every field by random rotations (the grid's
step 3) so it sees every pose. Rotation and similarity then come from the predicted grids
(`training.weightspace.axes`); the net itself never sees a pair or a rotation label.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from renderer.errors import RedcubeError


@dataclass
class GridConfig:
    levels: int = 2
    """Hash levels read, from the coarsest (the data set's default layout stores levels 0-1 densely)."""
    res: int = 16
    """Probe grid cells per box edge."""
    width: int = 32
    """Channels of the hidden convolutions."""
    depth: int = 3
    """3x3x3 convolutions before the per-voxel output."""
    features_per_level: int = 2
    """F of the layout the net was built for."""

    def __post_init__(self):
        if min(self.levels, self.res, self.width, self.depth, self.features_per_level) < 1:
            raise RedcubeError("grid arm levels, res, width, depth and features per level must be positive; fix the grid options.")


class GridDecoder(nn.Module):
    """Feature grids [B, levels * F, res, res, res] -> per-voxel occupancy logit and colour logits [B, 4, res, res, res]."""

    kind = "weightspace-grid"

    def __init__(self, config: GridConfig):
        super().__init__()
        self.config = config
        layers, width = [], config.levels * config.features_per_level
        for _ in range(config.depth):
            layers += [nn.Conv3d(width, config.width, 3, padding=1), nn.ReLU()]
            width = config.width
        self.net = nn.Sequential(*layers, nn.Conv3d(width, 4, 1))
        self.register_buffer("scale", torch.ones(1))
        """Std of the training features: the net sees unit-size inputs."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features / self.scale)

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Occupancy probability [B, res, res, res] and colour [B, 3, res, res, res]."""
        out = self(features)
        return torch.sigmoid(out[:, 0]), torch.sigmoid(out[:, 1:])
