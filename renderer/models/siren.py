"""SIREN baseline (Sitzmann et al. 2020): sine activations on the raw 6-D input, w0 = 30."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from renderer.encoding import INPUT_DIMS, INPUTS, network_input
from renderer.errors import RedcubeError
from renderer.scene import Scene


@dataclass
class SirenConfig:
    width: int = 256
    """Hidden units per layer."""
    layers: int = 5
    """Number of hidden sine layers."""
    w0: float = 30.0
    """Frequency factor of the sine activations (paper: 30)."""
    input: str = "pose"
    """'pose' (the blog's 6-D input), 'plucker' (the pixel's line) or 'ray' (line + o . d)."""
    out_channels: int = 3
    """3 for RGB; 4 for TinyVAE latents."""

    def __post_init__(self):
        if self.input not in INPUTS:
            raise RedcubeError(f"siren input {self.input!r} is unknown; choose one of {list(INPUTS)}.")
        if self.width < 1 or self.layers < 1 or self.w0 <= 0 or self.out_channels < 1:
            raise RedcubeError("siren width, layers, w0 and out_channels must be positive; fix the model config.")


def siren_init_(layer: nn.Linear, w0: float, first: bool) -> None:
    """SIREN paper, sec. 3.2: first layer U(-1/n, 1/n); later layers U(-sqrt(6/n)/w0, sqrt(6/n)/w0)."""
    n = layer.in_features
    bound = 1.0 / n if first else math.sqrt(6.0 / n) / w0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)


class Siren(nn.Module):
    def __init__(self, config: SirenConfig, scene: Scene):
        super().__init__()
        self.config, self.scene = config, scene
        dims = [INPUT_DIMS[config.input]] + [config.width] * config.layers
        self.hidden = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(config.layers))
        for i, layer in enumerate(self.hidden):
            siren_init_(layer, config.w0, first=i == 0)
        self.out = nn.Linear(config.width, config.out_channels)
        siren_init_(self.out, config.w0, first=False)

    def forward(self, poses: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """poses [B, 5], uv [B, 2] -> [B, out_channels]; RGB is mapped from [-1, 1] to [0, 1]."""
        h = network_input(self.config.input, poses, uv, self.scene)
        for layer in self.hidden:
            h = torch.sin(self.config.w0 * layer(h))
        y = self.out(h)
        return (y + 1) / 2 if self.config.out_channels == 3 else y
