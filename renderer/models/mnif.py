"""Mixtures of neural implicit functions (mNIF; You et al., NeurIPS 2023 — seed 003, eqs. 6–10).

M SIREN basis networks share one architecture: L + 2 linear layers (input, L hidden, output), eq. (3).
A world is a latent phi in R^H. Its layer-wise mixture coefficients are

  (10) [alpha^(0)_1..M, ..., alpha^(L+1)_1..M] = T phi          (T: a linear map whose bias starts at 1/M)

and layer i of the world's network applies the alpha-weighted mixture of the bases' layer i:

  (6)  h^(i+1) = sin(w0 * sum_m alpha^(i)_m (W^(i)_m h^(i) + b^(i)_m))
  (8)        = sin(w0 * (Wbar^(i) h^(i) + bbar^(i)))
  (9)  Wbar^(i) = sum_m alpha^(i)_m W^(i)_m,  bbar^(i) = sum_m alpha^(i)_m b^(i)_m

so `average(phi)` builds one plain SIREN (`PointSiren`) per world and rendering cost does not grow with M.

The field (the paper's simplified NeRF setting, appendix A.2.3: no view dependence) maps a world point
[3] to colour (linear, no activation, +0.5) and density. Density is the occupancy's
(`renderer.volume.occupancy_density`: zero below p = 0.5, sigma_max inside): redcube fits the field to each
world's analytic occupancy (see training/mnif/autodecode.py), as the paper's voxel mNIF fits occupancy, and the volume
renderer sees a near-opaque surface at the 0.5 level set.

Initialisation (paper A.2.4): alpha starts at 1/M for every basis (T's bias = 1/M, T's weight small).
Each basis is drawn with the SIREN init scaled by sqrt(M), so that the 1/M average of M independent
bases has exactly the SIREN init's spread (an average of M draws shrinks it by sqrt(M)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from renderer.errors import RedcubeError
from renderer.models.siren import siren_init_
from renderer.scene import Scene
from renderer.volume import occupancy_density
from renderer.worlds import family_box

IN_DIM, OUT_DIM = 3, 4  # point -> (rgb, occupancy logit)


@dataclass
class MNIFConfig:
    hidden_layers: int = 3
    """L: hidden sine layers between the input and output layers (L + 2 linear layers in all)."""
    width: int = 64
    """W: hidden units per layer."""
    bases: int = 64
    """M: basis networks in the mixture."""
    latent_dim: int = 64
    """H: dimension of a world's latent mixture-coefficient vector phi."""
    w0: float = 30.0
    """SIREN frequency factor (paper: 30)."""
    sigma_max: float = 400.0
    """Density (1/m) of fully occupied space: sigma = sigma_max * max(0, 2 sigmoid(logit) - 1)."""

    def __post_init__(self):
        if min(self.hidden_layers, self.width, self.bases, self.latent_dim) < 1 or not self.w0 > 0 or not self.sigma_max > 0:
            raise RedcubeError("mnif hidden_layers, width, bases, latent_dim, w0 and sigma_max must be positive; fix the model config.")

    def dims(self) -> list[int]:
        return [IN_DIM] + [self.width] * (self.hidden_layers + 1) + [OUT_DIM]


class PointSiren(nn.Module):
    """One plain SIREN over world points: the averaged network of one world (inference: no M anywhere)."""

    def __init__(self, config: MNIFConfig, scene: Scene):
        super().__init__()
        self.config, self.scene = config, scene
        d = config.dims()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(d[:-1], d[1:]))
        lo, hi = family_box(scene)
        self.register_buffer("lo", torch.tensor(lo), persistent=False)
        self.register_buffer("hi", torch.tensor(hi), persistent=False)

    def raw(self, points: torch.Tensor) -> torch.Tensor:
        """points [N, 3] -> raw outputs [N, 4] (rgb - 0.5, occupancy logit)."""
        h = 2 * (points - self.lo) / (self.hi - self.lo) - 1
        for layer in self.layers[:-1]:
            h = torch.sin(self.config.w0 * layer(h))
        return self.layers[-1](h)

    def field(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The volume renderer's field: density [N] (1/m) and colour [N, 3]."""
        y = self.raw(points)
        return occupancy_density(y[:, 3], self.config.sigma_max), y[:, :3] + 0.5


class MNIF(nn.Module):
    """The mixture: bases {theta_m} (eq. 7) and the projection T (eq. 10). Latents live with the trainer."""

    def __init__(self, config: MNIFConfig, scene: Scene):
        super().__init__()
        self.config, self.scene = config, scene
        d, m = config.dims(), config.bases
        self.n_layers = len(d) - 1
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(d[:-1], d[1:])):
            tmp = nn.Linear(a, m * b)
            siren_init_(tmp, config.w0, first=i == 0)  # SIREN sec. 3.2 bounds, by fan-in
            self.weights.append(nn.Parameter(tmp.weight.detach().reshape(m, b, a) * math.sqrt(m)))
            self.biases.append(nn.Parameter(tmp.bias.detach().reshape(m, b) * math.sqrt(m)))
        # (10) alpha = T phi, T's bias 1/M (every basis weighs 1/M at the start), its weight small
        self.project = nn.Linear(config.latent_dim, self.n_layers * m)
        with torch.no_grad():
            self.project.bias.fill_(1.0 / m)
            self.project.weight.normal_(0.0, 1.0 / (m * math.sqrt(config.latent_dim)))
        lo, hi = family_box(scene)
        self.register_buffer("lo", torch.tensor(lo), persistent=False)
        self.register_buffer("hi", torch.tensor(hi), persistent=False)

    def forward(self, poses: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """The pixel trainers' interface: an mNIF renders a world only given its latent, so refuse in one sentence."""
        raise RedcubeError("mnif is a generative field over a family of worlds, not a single-scene pixel model; "
                           "train it with redcube train-mnif and render it with redcube sample-mnif.")

    def check_latent(self, phi: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(phi) or phi.shape[-1] != self.config.latent_dim or phi.dim() not in (1, 2):
            shape = tuple(phi.shape) if torch.is_tensor(phi) else type(phi).__name__
            raise RedcubeError(f"a latent of shape {shape} does not fit this mNIF, whose latents have {self.config.latent_dim} "
                               "numbers; pass a latent saved from the same mNIF checkpoint.")
        return phi

    def coefficients(self, phi: torch.Tensor) -> torch.Tensor:
        """(10) phi [B, H] -> alpha [B, L + 2, M]."""
        return self.project(phi).reshape(len(phi), self.n_layers, self.config.bases)

    def averaged_weights(self, phi: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(9) Per layer, Wbar [B, out, in] and bbar [B, out] for latents phi [B, H]."""
        alpha = self.coefficients(self.check_latent(phi))
        out = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = alpha[:, i]  # [B, M]
            out.append(((a @ w.flatten(1)).reshape(len(a), *w.shape[1:]), a @ b))
        return out

    def raw(self, points: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """(8) points [B, N, 3] of B worlds with latents phi [B, H] -> raw outputs [B, N, 4], via averaged weights."""
        h = 2 * (points - self.lo) / (self.hi - self.lo) - 1
        layers = self.averaged_weights(phi)
        for k, (w, b) in enumerate(layers):
            h = torch.baddbmm(b[:, None, :], h, w.transpose(1, 2))
            if k < len(layers) - 1:
                h = torch.sin(self.config.w0 * h)
        return h

    @torch.no_grad()
    def average(self, phi: torch.Tensor) -> PointSiren:
        """One world's network (eq. 9 applied once): a plain SIREN whose size does not depend on M."""
        phi = self.check_latent(phi)
        net = PointSiren(self.config, self.scene).to(phi.device)
        for layer, (w, b) in zip(net.layers, self.averaged_weights(phi.reshape(1, -1))):
            layer.weight.copy_(w[0])
            layer.bias.copy_(b[0])
        return net

    def parameter_counts(self) -> dict[str, int]:
        """The paper's table columns: learnable parameters (bases + T) and inference parameters (one averaged SIREN)."""
        d = self.config.dims()
        inference = sum(a * b + b for a, b in zip(d[:-1], d[1:]))
        return {"learnable": sum(p.numel() for p in self.parameters()), "inference": inference}
