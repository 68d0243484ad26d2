"""Meta-learned mNIF (seed 003, Algorithm 1 with Meta-SGD rates): inner step, outer training, second order, checkpoints."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from renderer.errors import RedcubeError
from renderer.models import build_model
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.scene import Scene
from renderer.worlds import Cubes, train_worlds, world_scene
from training.mnif.autodecode import MNIFTrainConfig, load_mnif, point_loss, sample_points, save_mnif
from training.mnif.meta import MetaConfig, adapt, checkpoint_fit, fit_meta, initial_context, meta_loss

H = 16


def _model() -> MNIF:
    torch.manual_seed(0)
    return build_model("mnif", MNIFConfig(bases=8, width=32, latent_dim=H), Scene())


def _worlds(n: int = 4) -> tuple[list[Scene], Cubes]:
    scenes = [world_scene(p) for p in train_worlds(n)]
    return scenes, Cubes.of(scenes)


def _post_adaptation_loss(model, rates, cubes, meta, seed=123) -> float:
    """Query loss after the inner loop, on a fixed (seeded) support and query set."""
    gen = torch.Generator().manual_seed(seed)
    support, query = sample_points(Scene(), cubes, 512, gen), sample_points(Scene(), cubes, 512, gen)
    phi, _ = adapt(model, rates, support, initial_context(len(cubes.size), H, meta.context_std, gen), meta.inner_steps, 10.0)
    return float(point_loss(model, phi, query, 10.0)[0].detach())


def test_one_inner_step_with_the_rates_lowers_the_inner_loss():
    model, (_, cubes) = _model(), _worlds()
    gen = torch.Generator().manual_seed(0)
    batch = sample_points(Scene(), cubes, 512, gen)
    phi0 = initial_context(4, H, 0.01, gen)
    rates = torch.full((H,), MetaConfig().rate_init)
    phi1, before = adapt(model, rates, batch, phi0, 1, 10.0)
    after = float(point_loss(model, phi1, batch, 10.0)[0].detach())
    assert phi1.shape == (4, H)
    assert after < float(before.detach()) - 1e-3


def test_short_meta_training_lowers_the_post_adaptation_loss():
    model, (_, cubes) = _model(), _worlds()
    meta = MetaConfig(inner_steps=2)
    config = MNIFTrainConfig(steps=1, points=384)
    rates = torch.nn.Parameter(torch.full((H,), meta.rate_init))
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": 1e-3}, {"params": [rates], "lr": meta.rate_lr}])
    first = _post_adaptation_loss(model, rates.detach(), cubes, meta)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        loss, parts = meta_loss(model, rates, Scene(), cubes, config, meta, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss) and parts["loss_before_adapt"] > 0
    assert _post_adaptation_loss(model, rates.detach(), cubes, meta) < 0.9 * first
    assert not torch.allclose(rates.detach(), torch.full((H,), meta.rate_init))  # the rates are learned too


def _outer_grads(second_order: bool) -> list[torch.Tensor]:
    model, (_, cubes) = _model(), _worlds(2)
    rates = torch.full((H,), 1.0, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    support, query = sample_points(Scene(), cubes, 256, gen), sample_points(Scene(), cubes, 256, gen)
    phi, _ = adapt(model, rates, support, initial_context(2, H, 0.01, gen), 2, 10.0, second_order)
    loss, _ = point_loss(model, phi, query, 10.0)
    return torch.autograd.grad(loss, [model.project.weight, model.weights[1], rates])


def test_second_order_gives_finite_grads_that_differ_from_first_order():
    first, second = _outer_grads(False), _outer_grads(True)
    for f, s in zip(first, second):
        assert torch.isfinite(s).all() and s.abs().sum() > 0
    # the bases and T feel the inner loop's dependence on them only in second order
    assert not torch.allclose(first[0], second[0], rtol=1e-3, atol=1e-7)
    assert not torch.allclose(first[1], second[1], rtol=1e-3, atol=1e-7)


def test_meta_rates_and_method_survive_a_checkpoint_round_trip(tmp_path):
    model, (scenes, _) = _model(), _worlds(3)
    meta = MetaConfig(inner_steps=2, context_std=0.02)
    rates = torch.linspace(0.5, 1.5, H)
    config = MNIFTrainConfig(steps=1, points=256)
    latents = fit_meta(model, rates, scenes, Scene(), meta, 256, config.rgb_weight, seed=7)
    path = save_mnif(tmp_path / "checkpoint.safetensors", model, latents, Scene(), config, 1, {}, "meta", asdict(meta),
                     {"rates": rates})
    back, back_latents, record = load_mnif(path)
    assert record["method"] == "meta" and record["meta"]["inner_steps"] == 2
    assert torch.equal(back_latents, latents)
    fit = checkpoint_fit(path)
    assert fit.info["steps"] == 2 and fit.info["rates_min"] == pytest.approx(0.5)
    # the evaluation's fit is the saved inner loop: same rates, steps and context, same latents
    assert torch.allclose(fit.fn(back, scenes, Scene(), 7), latents, atol=1e-5)


def test_an_autodecoded_checkpoint_keeps_the_adam_fit(tmp_path):
    model = _model()
    path = save_mnif(tmp_path / "c.safetensors", model, torch.zeros(2, H), Scene(), MNIFTrainConfig(steps=1), 1, {})
    assert load_mnif(path)[2]["method"] == "autodecode"
    assert checkpoint_fit(path) is None


def test_a_meta_checkpoint_without_rates_is_one_sentence(tmp_path, one_sentence):
    path = save_mnif(tmp_path / "c.safetensors", _model(), torch.zeros(2, H), Scene(), MNIFTrainConfig(steps=1), 1, {}, "meta")
    with pytest.raises(RedcubeError) as e:
        checkpoint_fit(path)
    one_sentence(str(e.value))
    assert "no meta rates" in str(e.value)


@pytest.mark.parametrize("bad", [{"inner_steps": 0}, {"inner_steps": -2}, {"rate_init": 0.0}, {"rate_lr": -1.0},
                                 {"context_std": -0.1}])
def test_bad_meta_config_is_one_sentence(bad, one_sentence):
    with pytest.raises(RedcubeError) as e:
        MetaConfig(**bad)
    one_sentence(str(e.value))
