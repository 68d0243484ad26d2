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
    from training.mnif.autodecode import MNIFTrainConfig, MNIFTrainer

    make = lambda out, resume: MNIFTrainer(MNIFTrainConfig(steps=4, out=str(out), **MNIF_SMALL),  # noqa: E731
                                           MNIFConfig(bases=4, width=16, latent_dim=8), resume=resume)
    check_exact_resume(maker(make), tmp_path)


def test_mnif_meta_resumes_exactly(tmp_path):
    from renderer.models.mnif import MNIFConfig
    from training.mnif.autodecode import MNIFTrainConfig
    from training.mnif.meta import MetaConfig, MetaTrainer

    make = lambda out, resume: MetaTrainer(MNIFTrainConfig(steps=4, out=str(out), **MNIF_SMALL), MetaConfig(inner_steps=1),  # noqa: E731
                                           MNIFConfig(bases=4, width=16, latent_dim=8), resume=resume)
    check_exact_resume(maker(make), tmp_path)


def test_diffusion_resumes_exactly(tmp_path):
    import torch

    from training.mnif.diffusion import DenoiserConfig, DiffusionTrainConfig, DiffusionTrainer

    latents = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    small = DenoiserConfig(latent_dim=8, width=32, blocks=1, time_dim=16)
    make = lambda out, resume: DiffusionTrainer(latents, DiffusionTrainConfig(steps=4, batch=4), small, str(out), resume=resume)  # noqa: E731
    check_exact_resume(maker(make, "diffusion.safetensors"), tmp_path)


def test_weightspace_resumes_exactly(tiny_fields, tmp_path):
    from training.weightspace.model import WeightSpaceConfig
    from training.weightspace.train import WeightSpaceTrainConfig, WeightSpaceTrainer

    tiny = WeightSpaceConfig(embed=16, latent=4, layers=1, heads=2)
    make = lambda out, resume: WeightSpaceTrainer(WeightSpaceTrainConfig(  # noqa: E731
        data=str(tiny_fields), steps=4, batch=2, points=8, n_pos=2, heldout=2, eval_every=100, out=str(out), model=tiny), resume=resume)
    check_exact_resume(maker(make), tmp_path)


def test_weightspace_grid_resumes_exactly(tiny_fields, tmp_path):
    from training.weightspace.grid_model import GridConfig
    from training.weightspace.grid_train import GridTrainConfig, GridTrainer

    make = lambda out, resume: GridTrainer(GridTrainConfig(  # noqa: E731
        data=str(tiny_fields), steps=4, batch=2, heldout=2, eval_every=100, out=str(out), model=GridConfig(res=8, width=8, depth=2)),
        resume=resume)
    check_exact_resume(maker(make), tmp_path)
