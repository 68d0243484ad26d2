"""PSNR and SSIM against values worked out by hand, on single images [H, W, 3] and batches [N, H, W, 3]."""

from __future__ import annotations

import math

import pytest
import torch

from training.metrics import mse_to_psnr, psnr, ssim


def image(seed: int, shape=(32, 32, 3)) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def noisy(img: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    return (img + sigma * torch.randn(img.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)


def test_psnr_of_a_known_mse():
    assert mse_to_psnr(0.01) == pytest.approx(20.0)
    assert mse_to_psnr(torch.tensor(1e-4)) == pytest.approx(40.0)
    target = torch.full((16, 16, 3), 0.5)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-4)  # every pixel off by 0.1: MSE 0.01
    assert psnr(target + 0.01, target) == pytest.approx(40.0, abs=1e-3)


def test_psnr_averages_per_image_decibels():
    target = torch.full((2, 8, 8, 3), 0.5)
    pred = target.clone()
    pred[0] += 0.1  # 20 dB
    pred[1] += 0.01  # 40 dB
    assert psnr(pred, target) == pytest.approx(30.0, abs=1e-3)
    assert psnr(pred[0], target[0]) == pytest.approx(20.0, abs=1e-4)


def test_predictions_are_clamped_to_the_image_range():
    target = torch.ones(8, 8, 3)
    assert psnr(torch.full((8, 8, 3), 1.7), target) > 100  # clamped to 1: a perfect match
    assert ssim(torch.full((8, 8, 3), 1.7), target) == pytest.approx(1.0)


def test_identical_images_give_ssim_one_and_a_very_high_psnr():
    img = image(0)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-9)
    assert psnr(img, img) > 100
    batch = torch.stack([image(1), image(2), image(3)])
    assert ssim(batch, batch) == pytest.approx(1.0, abs=1e-9)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # With zero variance SSIM reduces to (2 mu_p mu_t + C1) / (mu_p^2 + mu_t^2 + C1).
    c1 = 0.01 ** 2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5 ** 2 + 0.6 ** 2 + c1)
    assert ssim(torch.full((16, 16, 3), 0.5), torch.full((16, 16, 3), 0.6)) == pytest.approx(expected, abs=1e-6)  # float32 inputs


def test_ssim_and_psnr_drop_as_noise_grows():
    img = image(4)
    levels = [0.0, 0.02, 0.05, 0.1, 0.3]
    s = [ssim(noisy(img, sigma), img) for sigma in levels]
    p = [psnr(noisy(img, sigma), img) for sigma in levels]
    assert all(a > b for a, b in zip(s, s[1:])), s
    assert all(a > b for a, b in zip(p, p[1:])), p
    assert s[1] > 0.95 and s[-1] < 0.8
    assert p[3] == pytest.approx(-10 * math.log10(0.01), abs=1.0)  # sigma 0.1 -> MSE ~0.01 (a little less: clamping)


def test_ssim_is_symmetric():
    a, b = image(5), noisy(image(5), 0.1)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)


def test_single_images_and_batches_agree():
    gts = torch.stack([image(10), image(11)])
    preds = torch.stack([noisy(gts[0], 0.05, seed=2), noisy(gts[1], 0.2, seed=3)])
    per_image_psnr = [psnr(p, g) for p, g in zip(preds, gts)]
    per_image_ssim = [ssim(p, g) for p, g in zip(preds, gts)]
    assert psnr(preds, gts) == pytest.approx(sum(per_image_psnr) / 2, abs=1e-9)
    assert ssim(preds, gts) == pytest.approx(sum(per_image_ssim) / 2, abs=1e-9)
    assert psnr(preds[:1], gts[:1]) == pytest.approx(per_image_psnr[0], abs=1e-9)
    assert ssim(preds[:1], gts[:1]) == pytest.approx(per_image_ssim[0], abs=1e-9)
    assert per_image_psnr[0] > per_image_psnr[1] and per_image_ssim[0] > per_image_ssim[1]


def test_ssim_works_on_images_smaller_than_the_window():
    img = image(6, (8, 8, 3))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-9)
    assert ssim(noisy(img, 0.2), img) < 0.9
