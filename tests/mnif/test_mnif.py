"""mNIF (seed 003, eqs. 6-10): mixture == averaged network, alpha init, auto-decoding lowers the loss, bad latents."""

from __future__ import annotations

import pytest
import torch

from renderer.errors import RedcubeError
from renderer.models import build_model
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.scene import Scene
from renderer.worlds import Cubes, train_worlds, world_scene
from training.mnif.autodecode import MNIFTrainConfig, best_starts, continue_from, network_groups, point_loss, sample_points, save_mnif


def _model(**kw) -> MNIF:
    torch.manual_seed(0)
    return MNIF(MNIFConfig(**{"bases": 8, "width": 32, "latent_dim": 16, **kw}), Scene())


def mixture_raw(model: MNIF, points: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """(6) The literal mixture: every basis's layer output, alpha-weighted, for points [B, N, 3] (O(M) per point)."""
    h = 2 * (points - model.lo) / (model.hi - model.lo) - 1
    alpha = model.coefficients(model.check_latent(phi))
    for k, (w, b) in enumerate(zip(model.weights, model.biases)):
        g = torch.einsum("moi,bni->bnmo", w, h) + b  # g_m(h) [B, N, M, out]
        h = (alpha[:, k][:, None, :, None] * g).sum(2)
        if k < model.n_layers - 1:
            h = torch.sin(model.config.w0 * h)
    return h


def test_averaged_network_equals_the_mixture():
    model = _model()
    phi = torch.randn(3, 16)
    x = torch.rand(3, 200, 3) * 3 - 1
    mix = mixture_raw(model, x, phi)  # eq. 6: every basis evaluated and mixed per layer
    assert torch.allclose(model.raw(x, phi), mix, atol=1e-4)  # eq. 8 with batched averaged weights
    for j in range(3):
        net = model.average(phi[j])  # eq. 9 once: a plain SIREN
        assert sum(p.numel() for p in net.parameters()) == model.parameter_counts()["inference"]
        assert torch.allclose(net.raw(x[j]), mix[j], atol=1e-4)


def test_alpha_starts_at_one_over_m():
    model = _model(bases=16)
    alpha = model.coefficients(torch.zeros(1, 16))
    assert alpha.shape == (1, 5, 16)
    assert torch.allclose(alpha, torch.full_like(alpha, 1 / 16))
    assert torch.allclose(model.project.bias, torch.full_like(model.project.bias, 1 / 16))
    # a small latent keeps every basis near 1/M
    assert (model.coefficients(0.01 * torch.randn(4, 16)) - 1 / 16).abs().max() < 0.1 / 16


def test_average_has_siren_spread_at_init():
    """Bases are scaled by sqrt(M) so that their 1/M average has the SIREN init's spread (not M times narrower)."""
    model = _model(bases=64)
    net = model.average(torch.zeros(16))
    w = net.layers[1].weight
    bound = (6 / 32) ** 0.5 / 30
    assert 0.7 < float(w.std()) / (bound / 3 ** 0.5) < 1.3


def test_short_auto_decoding_run_lowers_the_loss():
    torch.manual_seed(0)
    model = _model()
    scenes = [world_scene(p) for p in train_worlds(4)]
    cubes = Cubes.of(scenes)
    gen = torch.Generator().manual_seed(0)
    batch = sample_points(Scene(), cubes, 512, gen)
    phi = torch.nn.Parameter(torch.randn(4, 16) * 0.01)
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": 3e-4}, {"params": [phi], "lr": 2e-3}])
    first = None
    for _ in range(40):
        loss, _ = point_loss(model, phi, batch, 10.0)
        loss = loss + 1e-4 * (phi ** 2).sum(-1).mean()
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.7 * first


def _averaged_step(bases: int, groups) -> float:
    """Relative change of one world's averaged hidden weights after one Adam step of the point loss."""
    torch.manual_seed(0)
    model = _model(bases=bases)
    phi = 0.01 * torch.randn(2, 16)
    batch = sample_points(Scene(), Cubes.of([world_scene(p) for p in train_worlds(2)]), 256, torch.Generator().manual_seed(0))
    before = model.averaged_weights(phi)[1][0].detach()
    opt = torch.optim.Adam(groups(model))
    point_loss(model, phi, batch, 10.0)[0].backward()
    opt.step()
    return float((model.averaged_weights(phi)[1][0].detach() - before).norm() / before.norm())


def test_t_learning_rate_keeps_the_averaged_step_flat_in_m():
    """With one rate for everything the averaged network's step grows with M (T moves each 1/M coefficient by about lr:
    0.06 at M = 16, 0.15 at M = 256); `network_groups` scales T's rate by 1/M, so M = 256 steps like M = 16 (0.07)."""
    one_rate = lambda model: [{"params": list(model.parameters()), "lr": 5e-4}]
    scaled = lambda model: network_groups(model, 5e-4)
    assert _averaged_step(256, one_rate) / _averaged_step(16, one_rate) > 2
    assert 0.8 < _averaged_step(256, scaled) / _averaged_step(16, scaled) < 1.25


def test_best_starts_pick_the_latent_with_the_lowest_point_loss():
    """The held-out fit starts from the training latent that already fits the world best (chunked, per world)."""
    model = _model()
    latents = torch.randn(6, 16, generator=torch.Generator().manual_seed(1))
    scenes = [world_scene(p) for p in train_worlds(2)]
    starts = best_starts(model, latents, scenes, Scene(), points=256, seed=3, chunk=4)
    gen = torch.Generator().manual_seed(3)
    for scene, start in zip(scenes, starts):
        batch = sample_points(Scene(), Cubes.of([scene]), 256, gen)
        losses = torch.tensor([float(point_loss(model, phi[None], batch, 10.0)[0]) for phi in latents])
        assert len(set(losses.tolist())) == 6 and torch.equal(start, latents[losses.argmin()])


def test_wrong_latent_size_is_one_sentence():
    model = _model()
    with pytest.raises(RedcubeError, match="does not fit this mNIF, whose latents have 16 numbers"):
        model.average(torch.zeros(17))


def test_pixel_trainer_interface_refuses():
    with pytest.raises(RedcubeError, match="train-mnif"):
        _model()(torch.zeros(1, 5), torch.zeros(1, 2))


def test_pixel_trainer_refuses_mnif_in_one_sentence(one_sentence):
    from renderer.errors import RedcubeError
    from training.trainer import TrainConfig

    with pytest.raises(RedcubeError) as e:
        TrainConfig(model="mnif", steps=1)
    assert "train-mnif" in str(e.value)
    one_sentence(str(e.value))


def test_a_run_continues_from_a_checkpoint_of_its_size_only(tmp_path, one_sentence):
    config = MNIFTrainConfig(worlds=4, steps=1, out=str(tmp_path))
    built = lambda bases=8: build_model("mnif", MNIFConfig(bases=bases, width=32, latent_dim=16), Scene())
    saved, latents = built(), torch.randn(4, 16)
    save_mnif(tmp_path / "a.safetensors", saved, latents, Scene(), config, step=7, metrics={"steps": 7, "train_seconds": 3.0})
    fresh, into = built(), torch.nn.Parameter(torch.zeros(4, 16))
    with torch.no_grad():  # make sure the weights really move when loaded
        next(fresh.parameters()).add_(1.0)
    chain = continue_from(MNIFTrainConfig(worlds=4, steps=1, init_from=str(tmp_path / "a.safetensors")), fresh, into)
    assert torch.equal(into.data, latents) and chain["steps_before"] == 7 and chain["seconds_before"] == 3.0
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), saved.state_dict().values()))
    with pytest.raises(RedcubeError) as e:  # another size: refused, nothing loaded
        continue_from(MNIFTrainConfig(worlds=4, steps=1, init_from=str(tmp_path / "a.safetensors")), built(4),
                      torch.nn.Parameter(torch.zeros(4, 16)))
    one_sentence(str(e.value))
