"""Every model preset: builds, takes two Adam steps on real rasterizer pixels, renders at any resolution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renderer.camera import pixel_uv, sample_poses
from renderer.errors import RedcubeError
from renderer.models import MODELS, build_model, model_config
from renderer.models.siren import Siren, SirenConfig
from renderer.render import render_image


@pytest.fixture(scope="module")
def pixels(rasterizer, scene):
    """512 real ground-truth pixels: poses [512, 5], uv [512, 2], rgb [512, 3]."""
    res = 16
    g = torch.Generator().manual_seed(0)
    poses = sample_poses(scene, 4, g)
    rgb, _ = rasterizer.render(poses.numpy(), res)
    uv = pixel_uv(res)
    idx = torch.randperm(4 * res * res, generator=g)[:512]
    frame, pix = idx // (res * res), idx % (res * res)
    return poses[frame], uv[pix], torch.from_numpy(rgb.reshape(4, -1, 3))[frame, pix]


PIXEL_MODELS = sorted(k for k, (cfg, _) in MODELS.items() if "input" in cfg.__dataclass_fields__)  # the radiance field: tests/test_radiance.py
PRESETS = [(kind, inp) for kind in PIXEL_MODELS for inp in ("pose", "plucker")]


@pytest.mark.parametrize("kind,inp", PRESETS, ids=[f"{k}-{i}" for k, i in PRESETS])
def test_two_adam_steps_on_the_cpu(kind, inp, pixels, scene):
    torch.manual_seed(0)
    model = build_model(kind, {"input": inp}, scene)
    assert model.kind == kind and model.config.input == inp
    poses, uv, target = pixels
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(2):
        opt.zero_grad()
        out = model(poses, uv)
        assert out.shape == (512, 3)
        loss = torch.nn.functional.mse_loss(out, target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("kind", PIXEL_MODELS)
def test_default_config_and_render_at_two_resolutions(kind, scene):
    torch.manual_seed(0)
    model = build_model(kind, None, scene)
    assert model.config == MODELS[kind][0]()
    assert model.config.width == 256 and model.config.layers == 5
    pose = torch.tensor([0.5, 1.0, 1.5, 0.3, 0.0])
    small, large = render_image(model, pose, 16), render_image(model, pose, 48)
    assert small.shape == (16, 16, 3) and large.shape == (48, 48, 3)
    assert 0 <= small.min() and small.max() <= 1 or kind == "siren"  # siren maps [-1, 1] to [0, 1] untrimmed
    # The same weights at both resolutions: 48-pixel (3i+1, 3j+1) has the centre of 16-pixel (i, j).
    torch.testing.assert_close(large[1::3, 1::3], small, atol=1e-5, rtol=0)
    # And render_image is exactly the model on the pixel grid, however it is chunked.
    direct = model(pose.expand(256, 5), pixel_uv(16)).reshape(16, 16, 3)
    torch.testing.assert_close(small, direct.detach())
    torch.testing.assert_close(render_image(model, pose, 16, chunk=100), small)


def test_posemlp_shapes(scene):
    m = build_model("posemlp", {"width": 32, "layers": 3, "skip": True}, scene)
    assert m.hidden[0].in_features == 126 and m.skip_at == 1 and m.hidden[1].in_features == 32 + 126
    assert m(torch.zeros(7, 5), torch.zeros(7, 2)).shape == (7, 3)
    latent = build_model("posemlp", {"width": 16, "out_channels": 4}, scene)
    y = latent(torch.zeros(7, 5), torch.zeros(7, 2))
    assert y.shape == (7, 4)
    assert build_model("posemlp", {"n_freqs": 4}, scene).hidden[0].in_features == 54


def test_siren_init_bounds_from_the_paper(scene):
    """Sec. 3.2: first layer U(-1/n, 1/n), later layers U(-sqrt(6/n)/w0, sqrt(6/n)/w0), n = fan-in."""
    torch.manual_seed(0)
    m = Siren(SirenConfig(width=256, layers=4, w0=30.0), scene)
    layers = list(m.hidden) + [m.out]
    for i, layer in enumerate(layers):
        n = layer.in_features
        bound = 1.0 / n if i == 0 else math.sqrt(6.0 / n) / 30.0
        w = layer.weight.detach().abs()
        assert w.max() <= bound, f"layer {i}: |w| up to {w.max():.4g} > {bound:.4g}"
        assert w.max() > 0.95 * bound and w.mean() == pytest.approx(bound / 2, rel=0.1)  # uniform over the range
    assert m.hidden[0].in_features == 6


def test_siren_pre_activations_are_spread_by_w0(scene):
    """With the paper's init, w0 * (W x + b) of a hidden layer is roughly N(0, 1)-scaled: neither vanishing nor huge."""
    torch.manual_seed(0)
    m = Siren(SirenConfig(), scene)
    g = torch.Generator().manual_seed(0)
    poses, uv = sample_poses(scene, 2048, g), torch.rand(2048, 2, generator=g) * 2 - 1
    from renderer.encoding import network_input

    h = network_input("pose", poses, uv, scene)
    h = torch.sin(30.0 * m.hidden[0](h))
    pre = 30.0 * m.hidden[1](h)
    assert 0.5 < pre.std().item() < 2.0


def test_unknown_model_and_settings(scene, one_sentence):
    with pytest.raises(RedcubeError, match="unknown model 'nerf'") as e:
        build_model("nerf", None, scene)
    one_sentence(str(e.value))
    assert "posemlp" in str(e.value)
    with pytest.raises(RedcubeError, match="depth") as e:
        model_config("posemlp", {"depth": 3})
    one_sentence(str(e.value))
    with pytest.raises(RedcubeError, match="omega") as e:
        build_model("siren", {"omega": 30}, scene)
    one_sentence(str(e.value))
    for kind, bad in (("posemlp", {"input": "rays"}), ("siren", {"input": "rays"}),
                      ("posemlp", {"width": 0}), ("siren", {"w0": 0.0}), ("posemlp", {"n_freqs": -1})):
        with pytest.raises(RedcubeError) as e:
            build_model(kind, bad, scene)
        one_sentence(str(e.value))


def test_build_model_accepts_a_config_object(scene):
    cfg = model_config("siren", {"width": 24})
    m = build_model("siren", cfg, scene)
    assert m.config is cfg and m.hidden[0].out_features == 24


def test_models_are_seeded(scene):
    a = build_model("posemlp", {"width": 16}, scene)
    torch.manual_seed(0)
    b = build_model("posemlp", {"width": 16}, scene)
    torch.manual_seed(0)
    c = build_model("posemlp", {"width": 16}, scene)
    assert all(torch.equal(x, y) for x, y in zip(b.parameters(), c.parameters()))
    assert np.isfinite(a(torch.zeros(1, 5), torch.zeros(1, 2)).detach().numpy()).all()
