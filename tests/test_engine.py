"""The one training loop: every kind resumes exactly, budgets are checked, records and schedules are the engine's."""

from __future__ import annotations

import math

import pytest

from renderer.errors import RedcubeError
from resume import check_exact_resume
from training.checkpoint import DEFAULT_NAME
from training.engine import Plan
from training.vae_train import VAETrainConfig, VAETrainer


def maker(build, name: str = DEFAULT_NAME):
    build.checkpoint_name = name
    return build


def test_vae_resumes_exactly(tmp_path):
    def make(out, resume):
        c = VAETrainConfig(steps=4, res=64, crop=32, batch=1, frames=2, refresh_every=3, heldout=1, eval_every=100, out=str(out))
        return VAETrainer(c, resume=resume)
    check_exact_resume(maker(make), tmp_path)


@pytest.mark.parametrize("steps, minutes", [(None, None), (float("nan"), None), (None, math.nan), (0, None), (None, -1.0)])
def test_a_budget_is_needed_and_finite(steps, minutes, one_sentence):
    with pytest.raises(RedcubeError) as e:
        Plan(steps, minutes, None)
    one_sentence(str(e.value))


MNIF_SMALL = dict(worlds=4, batch_worlds=2, points=64, eval_worlds=1, eval_views=1, eval_res=16, samples=8, supersample=1,
                  fit_steps=2)


def test_mnif_autodecode_resumes_exactly(tmp_path):
    from renderer.models.mnif import MNIFConfig
    from training.mnif import MNIFTrainConfig, MNIFTrainer

    make = lambda out, resume: MNIFTrainer(MNIFTrainConfig(steps=4, out=str(out), **MNIF_SMALL),  # noqa: E731
                                           MNIFConfig(bases=4, width=16, latent_dim=8), resume=resume)
    check_exact_resume(maker(make), tmp_path)


def test_mnif_meta_resumes_exactly(tmp_path):
    from renderer.models.mnif import MNIFConfig
    from training.mnif import MNIFTrainConfig
    from training.mnif_meta import MetaConfig, MetaTrainer

    make = lambda out, resume: MetaTrainer(MNIFTrainConfig(steps=4, out=str(out), **MNIF_SMALL), MetaConfig(inner_steps=1),  # noqa: E731
                                           MNIFConfig(bases=4, width=16, latent_dim=8), resume=resume)
    check_exact_resume(maker(make), tmp_path)


def test_diffusion_resumes_exactly(tmp_path):
    import torch

    from training.latent_diffusion import DenoiserConfig, DiffusionTrainConfig, DiffusionTrainer

    latents = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    small = DenoiserConfig(latent_dim=8, width=32, blocks=1, time_dim=16)
    make = lambda out, resume: DiffusionTrainer(latents, DiffusionTrainConfig(steps=4, batch=4), small, str(out), resume=resume)  # noqa: E731
    check_exact_resume(maker(make, "diffusion.safetensors"), tmp_path)
