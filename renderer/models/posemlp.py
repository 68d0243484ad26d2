"""The red-cube blog's pose-conditioned renderer: positional encoding -> ReLU MLP -> RGB.

Input per pixel is either the blog's 6-D pose input (x, z, cos yaw, sin yaw, u, v) or the pixel's
Plücker ray; both are 6-D and encoded to 126 features, so both cost the same per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from renderer.encoding import INPUT_DIMS, INPUTS, encoded_dim, network_input, positional_encoding
from renderer.errors import RedcubeError
from renderer.scene import Scene


@dataclass
class PoseMLPConfig:
    width: int = 256
    """Hidden units per layer."""
    layers: int = 5
    """Number of hidden ReLU layers (the blog uses 5)."""
    n_freqs: int = 10
    """Positional-encoding frequencies per input (10 gives the blog's 126-dim input)."""
    input: str = "pose"
    """'pose': the blog's (x, z, cos yaw, sin yaw, u, v); 'plucker': the pixel's line (d, o x d);
    'ray': the line plus the camera's place on it (d, o x d, o . d)."""
    skip: bool = False
    """Concatenate the encoded input again before the middle layer (NeRF-style skip)."""
    out_channels: int = 3
    """3 for RGB; 4 for TinyVAE latents."""

    def __post_init__(self):
        if self.input not in INPUTS:
            raise RedcubeError(f"posemlp input {self.input!r} is unknown; choose one of {list(INPUTS)}.")
        if self.width < 1 or self.layers < 1 or self.n_freqs < 0 or self.out_channels < 1:
            raise RedcubeError("posemlp width, layers and out_channels must be positive and n_freqs >= 0; fix the model config.")


class PoseMLP(nn.Module):
    def __init__(self, config: PoseMLPConfig, scene: Scene):
        super().__init__()
        self.config, self.scene = config, scene
        d_in = encoded_dim(INPUT_DIMS[config.input], config.n_freqs)
        self.skip_at = config.layers // 2 if config.skip and config.layers > 1 else -1
        dims = [d_in] + [config.width] * config.layers
        self.hidden = nn.ModuleList(
            nn.Linear(dims[i] + (d_in if i == self.skip_at else 0), dims[i + 1]) for i in range(config.layers)
        )
        self.out = nn.Linear(config.width, config.out_channels)

    def forward(self, poses: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """poses [B, 5], uv [B, 2] -> colours [B, out_channels] (sigmoid for RGB, raw for latents)."""
        x = positional_encoding(network_input(self.config.input, poses, uv, self.scene), self.config.n_freqs)
        h = x
        for i, layer in enumerate(self.hidden):
            if i == self.skip_at:
                h = torch.cat([h, x], dim=-1)
            h = torch.relu(layer(h))
        y = self.out(h)
        return torch.sigmoid(y) if self.config.out_channels == 3 else y
