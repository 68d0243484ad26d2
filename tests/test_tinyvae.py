"""TinyVAE: redcube's image/latent conventions against diffusers' own AutoencoderTiny calls, the
pretrained-layout loader (directory, HF cache, repo id), bad sources, and the shipped scene VAE."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderTiny

from renderer.camera import sample_poses
from renderer.errors import RedcubeError
from renderer.tinyvae import TinyVAE
from training.metrics import psnr
from training.vae import SCENE_VAE, load_vae


@pytest.fixture(scope="module")
def random_taesd(tmp_path_factory):
    """A randomly initialised AutoencoderTiny saved by diffusers itself in the pretrained (TAESD) layout."""
    torch.manual_seed(1)
    ae = AutoencoderTiny().eval()
    d = tmp_path_factory.mktemp("taesd")
    ae.save_pretrained(str(d), safe_serialization=True)
    return ae, d


@pytest.fixture
def known_image(rasterizer, scene):
    """Two real renders, 64², as [2, 64, 64, 3] in [0, 1]."""
    poses = sample_poses(scene, 2, torch.Generator().manual_seed(3)).numpy()
    return torch.from_numpy(rasterizer.render(poses, 64)[0])


def test_conventions_match_diffusers_through_the_pretrained_loader(random_taesd, known_image):
    ae, d = random_taesd
    vae = TinyVAE.from_pretrained(d)
    x = known_image
    with torch.no_grad():
        z = vae.encode(x)
        assert z.shape == (2, 8, 8, 4)
        # diffusers' convention: images in [-1, 1] NCHW in, latents NCHW out, images in [-1, 1] out
        z_ref = ae.encode(x.permute(0, 3, 1, 2) * 2 - 1).latents
        torch.testing.assert_close(z, z_ref.permute(0, 2, 3, 1))
        y = vae.decode(z)
        y_ref = (ae.decode(z_ref).sample.permute(0, 2, 3, 1) + 1) / 2
        torch.testing.assert_close(y, y_ref.clamp(0, 1))
        assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
        # TAESD's uint8 latent storage: our latent picture, quantised, decodes like diffusers' forward()
        q = torch.round(vae.latent_picture(z, channels=4) * 255) / 255
        y_q = vae.decode((q - float(vae.config["latent_shift"])) * (2 * vae.latent_magnitude))  # the picture's inverse
        torch.testing.assert_close(y_q, ((ae(x.permute(0, 3, 1, 2) * 2 - 1).sample.permute(0, 2, 3, 1) + 1) / 2).clamp(0, 1))


def test_weights_round_trip_the_pretrained_layout(random_taesd, known_image, tmp_path):
    _, d = random_taesd
    vae = TinyVAE.from_pretrained(d)
    vae.ae.save_pretrained(str(tmp_path / "again"), safe_serialization=True)
    again = TinyVAE.from_pretrained(tmp_path / "again")
    assert again.identity()["sha256"] == vae.identity()["sha256"]
    with torch.no_grad():
        torch.testing.assert_close(again.decode(again.encode(known_image)), vae.decode(vae.encode(known_image)))


def test_hf_cache_entry_and_repo_id_load_offline(random_taesd, tmp_path, monkeypatch):
    _, d = random_taesd
    entry = tmp_path / "hub" / "models--madebyollin--taesd"
    commit = "0123abc" * 5 + "01234"  # the hub names snapshots by their 40-hex commit
    snap = entry / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in d.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    want = TinyVAE.from_pretrained(d).identity()["sha256"]
    assert load_vae(str(entry)).identity()["sha256"] == want
    assert load_vae("madebyollin/taesd").identity()["sha256"] == want


@pytest.mark.parametrize("make", ["missing", "empty_dir", "not_in_cache", "wrong_class", "wrong_shapes", "not_a_vae_checkpoint"])
def test_bad_vae_sources_are_one_sentence(make, random_taesd, tmp_path, monkeypatch, one_sentence):
    _, d = random_taesd
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    if make == "missing":
        source = tmp_path / "nowhere"
    elif make == "empty_dir":
        source = tmp_path / "empty"
        source.mkdir()
    elif make == "not_in_cache":
        source = "madebyollin/taesd"
    elif make in ("wrong_class", "wrong_shapes"):
        source = tmp_path / make
        source.mkdir()
        (source / "diffusion_pytorch_model.safetensors").write_bytes((d / "diffusion_pytorch_model.safetensors").read_bytes())
        cfg = (d / "config.json").read_text()
        cfg = cfg.replace('"AutoencoderTiny"', '"AutoencoderKL"') if make == "wrong_class" else cfg.replace('"latent_channels": 4', '"latent_channels": 16')
        (source / "config.json").write_text(cfg)
    else:  # a redcube checkpoint of a pose network passed as a VAE
        from renderer.models import build_model
        from renderer.scene import Scene
        from training.checkpoint import save_checkpoint

        source = save_checkpoint(tmp_path / "posemlp.safetensors", build_model("posemlp", {}, Scene()), Scene())
    with pytest.raises(RedcubeError) as e:
        load_vae(str(source))
    one_sentence(str(e.value))


@pytest.mark.skipif(not SCENE_VAE.exists(), reason="the scene TinyVAE asset is not built yet")
def test_shipped_scene_vae_round_trips_renders(rasterizer, scene):
    """Two views with cube, ground and sky (the hard ones: sky-only views round-trip at ~60 dB). Measured
    23.3 / 23.4 dB at 256² for the shipped VAE (43.1 mean, 34.2 pooled at 512² over 16 held-out views; its thin grid
    lines are what 256² frames lose most, assets/README.md); the VAE before it scored 20.3 / 19.6."""
    from renderer.camera import Camera

    vae = load_vae("scene")
    poses = torch.stack([Camera(0.3, 1.8, 0.2).pose(), Camera(-1.5, -1.5, 3.9).pose()]).numpy()
    x = torch.from_numpy(rasterizer.render(poses, 256)[0])
    with torch.no_grad():
        y = vae.decode(vae.encode(x))
    assert psnr(y, x) > 21.0


def test_train_vae_two_steps_writes_a_loadable_scene_vae(tmp_path, capsys):
    import json

    from app.cli import main

    out = tmp_path / "vae"
    assert main(["train-vae", "--steps", "2", "--res", "64", "--crop", "32", "--heldout", "1", "--eval-every", "1", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 2 and result["res"] == 64
    record = json.loads((out / "checkpoint.json").read_text())
    assert record["model"]["kind"] == "tinyvae" and record["vae"]["sha256"] == load_vae(str(out / "checkpoint.safetensors")).identity()["sha256"]


@pytest.mark.skipif(not SCENE_VAE.exists(), reason="the scene TinyVAE asset is not built yet")
def test_eval_reports_a_vae_checkpoints_round_trip(rasterizer, scene, tmp_path, capsys):
    """`redcube eval` on a TinyVAE checkpoint scores encode -> decode of held-out renders, as a direct round trip does."""
    import json

    from app.cli import main

    poses = [{"x": 0.3, "z": 1.8, "yaw": 0.2}, {"x": -1.5, "z": -1.5, "yaw": 3.9}]
    (tmp_path / "poses.json").write_text(json.dumps(poses))
    assert main(["eval", str(SCENE_VAE), "--poses", str(tmp_path / "poses.json"), "--res", "128",
                 "--sheet", str(tmp_path / "sheet.png")]) == 0
    out = json.loads(capsys.readouterr().out)
    vae = load_vae("scene")
    from renderer.camera import Camera

    x = torch.from_numpy(rasterizer.render(torch.stack([Camera(p["x"], p["z"], p["yaw"]).pose() for p in poses]).numpy(), 128)[0])
    with torch.no_grad():
        y = vae.decode(vae.encode(x))
    assert out["n"] == 2 and out["res"] == 128 and abs(out["psnr"] - psnr(y, x)) < 1e-3
    assert (tmp_path / "sheet.png").exists()


def test_latent_excess_is_zero_inside_the_decoders_range():
    from training.vae_train import latent_excess

    vae = TinyVAE()
    m = vae.latent_magnitude
    assert float(latent_excess(vae, torch.full((1, 2, 2, 4), m * 0.99))) == 0.0
    assert float(latent_excess(vae, torch.full((1, 2, 2, 4), -(m + 2.0)))) == pytest.approx(4.0)
