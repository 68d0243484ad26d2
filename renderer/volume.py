"""Generic NeRF volume rendering in small pure functions (Mildenhall et al. 2020, eq. 3).

  (1) t0, t1  = ray_box(...)                               where each ray enters / leaves the scene box
  (2) t_k     = t0 + (k + u) (t1 - t0) / K                 stratified samples (u = 0.5: midpoints)
  (3) alpha_k = 1 - exp(-sigma_k dt_k)
  (4) T_k     = prod_{j<k} (1 - alpha_j)                   transmittance
  (5) C       = sum_k T_k alpha_k c_k + T_K * background   the scene's constant sky colour behind everything

`render_rays` ties them together for any field `points [N, 3] -> (sigma [N], rgb [N, 3])`, in chunks.
"""

from __future__ import annotations

from typing import Callable

import torch

from renderer.camera import pixel_uv, rays

Field = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def occupancy_density(logit: torch.Tensor, sigma_max: float) -> torch.Tensor:
    """Density [N] (1/m) of an occupancy field's logits [N]: zero where occupancy p < 0.5, rising to sigma_max inside,
    sigma = sigma_max * max(0, 2p - 1) = sigma_max * relu(tanh(logit / 2)). The surface is the p = 0.5 level set;
    sigma_max * p instead gives free space with p = 0.05 a density of 20/m, opaque within centimetres: inflated
    objects and floaters (an mNIF's training worlds: 22.7 dB that way, 46.9 dB this way, same weights, 4 worlds)."""
    return sigma_max * torch.relu(torch.tanh(logit / 2))


def ray_box(o: torch.Tensor, d: torch.Tensor, lo, hi, near: float, far: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(1) Slab test: entry and exit distances t0, t1 [B] of rays o + t d [B, 3] through the box [lo, hi], within [near, far].
    Rays that miss the box get t1 <= t0."""
    lo = torch.as_tensor(lo, dtype=o.dtype, device=o.device)
    hi = torch.as_tensor(hi, dtype=o.dtype, device=o.device)
    inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
    a, b = (lo - o) * inv, (hi - o) * inv
    t0 = torch.minimum(a, b).amax(-1).clamp(min=near)
    t1 = torch.maximum(a, b).amin(-1).clamp(max=far)
    return t0, torch.maximum(t1, t0)


def stratified(t0: torch.Tensor, t1: torch.Tensor, k: int, jitter: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(2) k samples per ray in [t0, t1]: positions t [B, k] and interval lengths dt [B, k] (midpoints unless jitter)."""
    step = (t1 - t0)[:, None] / k
    u = torch.rand(len(t0), k, device=t0.device, dtype=t0.dtype) if jitter else 0.5
    t = t0[:, None] + (torch.arange(k, device=t0.device, dtype=t0.dtype)[None, :] + u) * step
    return t, step.expand(-1, k)


def composite(sigma: torch.Tensor, rgb: torch.Tensor, dt: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """(3)-(5) Pixel colours [B, 3] of sigma [B, K], rgb [B, K, 3] on intervals dt [B, K], over background [3]."""
    tau = sigma * dt
    alpha = 1.0 - torch.exp(-tau)
    transmittance = torch.exp(-(torch.cumsum(tau, dim=1) - tau))
    rest = torch.exp(-tau.sum(1, keepdim=True))
    return ((transmittance * alpha)[..., None] * rgb).sum(1) + rest * background


def render_rays(field: Field, o: torch.Tensor, d: torch.Tensor, lo, hi, near: float, far: float, samples: int,
                background, chunk: int = 4096) -> torch.Tensor:
    """Colours [B, 3] of rays o, d [B, 3] through `field` inside the box [lo, hi]: `samples` samples at the midpoints
    of equal intervals per ray, `chunk` rays at a time."""
    bg = torch.as_tensor(background, dtype=o.dtype, device=o.device)
    out = []
    for i in range(0, len(o), chunk):
        oc, dc = o[i:i + chunk], d[i:i + chunk]
        t0, t1 = ray_box(oc, dc, lo, hi, near, far)
        t, dt = stratified(t0, t1, samples)
        sigma, rgb = field((oc[:, None, :] + t[..., None] * dc[:, None, :]).reshape(-1, 3))
        out.append(composite(sigma.reshape(t.shape), rgb.reshape(*t.shape, 3), dt, bg))
    return torch.cat(out)


def render_views(field: Field, scene, poses: torch.Tensor, res: int, lo, hi, samples: int, supersample: int = 1,
                 chunk: int = 4096) -> torch.Tensor:
    """Images [B, res, res, 3] of `field` from cameras poses [B, 5]: `supersample`² rays per pixel, box-filtered
    (the rasterizer's anti-aliasing with the same sub-pixel centres)."""
    s = supersample
    uv = pixel_uv(res * s, device=poses.device)
    images = []
    for pose in poses:
        o, d = rays(pose[None, :].expand(len(uv), -1), uv, scene)
        rgb = render_rays(field, o, d, lo, hi, scene.near, scene.far, samples, scene.sky_color, chunk=chunk)
        images.append(rgb.reshape(res, s, res, s, 3).mean(dim=(1, 3)))
    return torch.stack(images)
