"""Generic NeRF volume rendering in small pure functions (Mildenhall et al. 2020, eq. 3).

  (1) t0, t1  = ray_box(...)                               where each ray enters / leaves the scene box
  (2) t_k     = t0 + (k + u) (t1 - t0) / K                 stratified samples (u = 0.5: midpoints)
  (3) alpha_k = 1 - exp(-sigma_k dt_k)
  (4) T_k     = prod_{j<k} (1 - alpha_j)                   transmittance
  (5) C       = sum_k T_k alpha_k c_k + T_K * background   the scene's constant sky colour behind everything
  (6) hierarchical sampling (NeRF sec. 5.2): the coarse weights, max-blurred over neighbours (mip-NeRF 360),
      form a piecewise-constant PDF along the ray; `fine` more samples are drawn from it by inverse CDF and
      the union of coarse and fine samples, sorted, is composited with dt_i = t_{i+1} - t_i.

`render_rays` ties them together for any field `points [N, 3] -> (sigma [N], rgb [N, 3])`, in chunks.
"""

from __future__ import annotations

from typing import Callable

import torch

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


def stratified(t0: torch.Tensor, t1: torch.Tensor, k: int, jitter: bool = False,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(2) k samples per ray in [t0, t1]: positions t [B, k] and interval lengths dt [B, k] (midpoints unless jitter)."""
    step = (t1 - t0)[:, None] / k
    u = torch.rand(len(t0), k, generator=generator, device=t0.device, dtype=t0.dtype) if jitter else 0.5
    t = t0[:, None] + (torch.arange(k, device=t0.device, dtype=t0.dtype)[None, :] + u) * step
    return t, step.expand(-1, k)


def composite(sigma: torch.Tensor, rgb: torch.Tensor, dt: torch.Tensor, background: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(3)-(5) Alpha compositing of sigma [B, K], rgb [B, K, 3] over intervals dt [B, K] in front of background [3]:
    pixel colours [B, 3] and the sample weights T_k alpha_k [B, K]."""
    tau = sigma * dt
    alpha = 1.0 - torch.exp(-tau)
    transmittance = torch.exp(-(torch.cumsum(tau, dim=1) - tau))
    weights = transmittance * alpha
    rest = torch.exp(-tau.sum(1, keepdim=True))
    return (weights[..., None] * rgb).sum(1) + rest * background, weights


def sample_pdf(t: torch.Tensor, dt: torch.Tensor, weights: torch.Tensor, k: int) -> torch.Tensor:
    """(6) k positions [B, k] drawn by inverse CDF (evenly spaced quantiles: deterministic) from the coarse samples'
    weights [B, K], each spread over its interval [t - dt/2, t + dt/2] and max-blurred with its neighbours."""
    w = weights
    w = torch.maximum(w, torch.cat([w[:, 1:], torch.zeros_like(w[:, :1])], 1))
    w = torch.maximum(w, torch.cat([torch.zeros_like(w[:, :1]), w[:, :-1]], 1)) + 1e-5
    pdf = w / w.sum(1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, 1)], 1)  # [B, K + 1]
    edges = torch.cat([t - dt / 2, t[:, -1:] + dt[:, -1:] / 2], 1)
    u = (torch.arange(k, device=t.device, dtype=t.dtype) + 0.5) / k
    u = u.expand(len(t), k).contiguous()
    idx = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[1] - 1)
    c0, c1 = cdf.gather(1, idx - 1), cdf.gather(1, idx)
    e0, e1 = edges.gather(1, idx - 1), edges.gather(1, idx)
    return e0 + (u - c0) / (c1 - c0).clamp_min(1e-12) * (e1 - e0)


def render_rays(field: Field, o: torch.Tensor, d: torch.Tensor, lo, hi, near: float, far: float, samples: int,
                background, fine: int = 0, jitter: bool = False, chunk: int = 4096) -> torch.Tensor:
    """Colours [B, 3] of rays o, d [B, 3] through `field` inside the box [lo, hi]: `samples` stratified samples per ray,
    then `fine` hierarchical ones (0: none), `chunk` rays at a time."""
    bg = torch.as_tensor(background, dtype=o.dtype, device=o.device)
    out = []
    for i in range(0, len(o), chunk):
        oc, dc = o[i:i + chunk], d[i:i + chunk]
        t0, t1 = ray_box(oc, dc, lo, hi, near, far)
        t, dt = stratified(t0, t1, samples, jitter)
        sigma, rgb = field((oc[:, None, :] + t[..., None] * dc[:, None, :]).reshape(-1, 3))
        color, weights = composite(sigma.reshape(t.shape), rgb.reshape(*t.shape, 3), dt, bg)
        if fine:
            tf = sample_pdf(t, dt, weights.detach(), fine)
            sf, cf = field((oc[:, None, :] + tf[..., None] * dc[:, None, :]).reshape(-1, 3))
            t_all, order = torch.sort(torch.cat([t, tf], 1), 1)
            s_all = torch.cat([sigma.reshape(t.shape), sf.reshape(tf.shape)], 1).gather(1, order)
            c_all = torch.cat([rgb.reshape(*t.shape, 3), cf.reshape(*tf.shape, 3)], 1).gather(1, order[..., None].expand(-1, -1, 3))
            dt_all = torch.cat([t_all[:, 1:] - t_all[:, :-1], (t1[:, None] - t_all[:, -1:]).clamp_min(0)], 1)
            color = composite(s_all, c_all, dt_all, bg)[0]
        out.append(color)
    return torch.cat(out)


def render_views(field: Field, scene, poses: torch.Tensor, res: int, lo, hi, samples: int, fine: int = 0,
                 supersample: int = 1, chunk: int = 4096) -> torch.Tensor:
    """Images [B, res, res, 3] of `field` from cameras poses [B, 5]: `supersample`² rays per pixel, box-filtered
    (the rasterizer's anti-aliasing with the same sub-pixel centres)."""
    from renderer.camera import pixel_uv, rays

    s = supersample
    uv = pixel_uv(res * s, device=poses.device)
    images = []
    for pose in poses:
        o, d = rays(pose[None, :].expand(len(uv), -1), uv, scene)
        rgb = render_rays(field, o, d, lo, hi, scene.near, scene.far, samples, scene.sky_color, fine=fine, chunk=chunk)
        img = rgb.reshape(res, s, res, s, 3).mean(dim=(1, 3))
        images.append(img)
    return torch.stack(images)
