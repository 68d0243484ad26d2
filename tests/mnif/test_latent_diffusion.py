"""Latent DDPM (diffusers DDPMScheduler to train, DDIMScheduler to sample) over mNIF latents."""

from __future__ import annotations

import pytest
import torch

from renderer.errors import RedcubeError
from training.mnif.diffusion import DenoiserConfig, LatentDiffusion, train_diffusion

SMALL = DenoiserConfig(latent_dim=8, width=64, blocks=2, time_dim=32)


def test_ddpm_step_and_ddim_sampling_give_finite_latents_of_the_right_shape():
    latents = torch.randn(16, 8)
    ld = LatentDiffusion.for_latents(latents, SMALL)
    opt = torch.optim.Adam(ld.model.parameters(), 1e-3)
    loss = ld.loss(latents, torch.Generator().manual_seed(0))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    z = ld.sample(5, steps=10, seed=1)
    assert z.shape == (5, 8) and torch.isfinite(z).all()
    assert torch.equal(z, ld.sample(5, steps=10, seed=1))  # seeded


@pytest.mark.slow  # ~2 minutes of denoiser training on two cores
def test_denoiser_overfits_a_tiny_latent_set():
    torch.manual_seed(0)
    latents = torch.randn(4, 8) * 3
    ld, stats = train_diffusion(latents, steps=800, batch=64, lr=3e-3, config=SMALL)
    z = ld.sample(32, steps=50, seed=0)
    nearest = torch.cdist(z, latents).min(1).values
    spread = torch.cdist(latents, latents)[~torch.eye(4, dtype=bool)].min()
    # samples gather at the training latents: nearer than half their spacing (random draws of the same spread land ~1.5x it away)
    assert float(nearest.median()) < 0.5 * float(spread), (nearest, spread)
    assert stats["diffusion_final_loss"] < 0.5


def test_diffusion_of_another_mnif_is_refused(tmp_path):
    mine = torch.randn(16, 8)
    ld = LatentDiffusion.for_latents(mine, SMALL)
    ld.save(tmp_path / "ddpm.safetensors")
    back = LatentDiffusion.load(tmp_path / "ddpm.safetensors")
    back.check_mnif(mine)  # its own mNIF passes
    with pytest.raises(RedcubeError, match="trained on another mNIF"):
        back.check_mnif(torch.randn(16, 8))
    with pytest.raises(RedcubeError, match="sampling steps is invalid"):
        back.sample(1, steps=0)
