"""Image quality metrics: PSNR and SSIM (LPIPS needs backbone weights this machine cannot fetch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse_to_psnr(mse: float | torch.Tensor) -> float:
    """PSNR in dB for images in [0, 1]."""
    mse = torch.as_tensor(mse, dtype=torch.float64).clamp_min(1e-12)
    return float(-10.0 * torch.log10(mse))


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR over images [..., H, W, C] (per image, then averaged) in dB."""
    p, t = pred.reshape(-1, *pred.shape[-3:]), target.reshape(-1, *target.shape[-3:])
    mse = ((p.clamp(0, 1) - t) ** 2).flatten(1).mean(1).double().clamp_min(1e-12)
    return float((-10.0 * torch.log10(mse)).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) over images [..., H, W, C]."""
    p = pred.reshape(-1, *pred.shape[-3:]).clamp(0, 1).permute(0, 3, 1, 2).double()
    t = target.reshape(-1, *target.shape[-3:]).permute(0, 3, 1, 2).double()
    c = p.shape[1]
    size = min(11, p.shape[-1], p.shape[-2])
    g = _gaussian_window(size)
    win = (g[:, None] * g[None, :]).expand(c, 1, size, size).contiguous()

    def blur(x):
        return F.conv2d(x, win, groups=c)

    mu_p, mu_t = blur(p), blur(t)
    var_p = blur(p * p) - mu_p ** 2
    var_t = blur(t * t) - mu_t ** 2
    cov = blur(p * t) - mu_p * mu_t
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2))
    return float(s.mean())
