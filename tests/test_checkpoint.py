"""The one checkpoint format: round trips, the JSON record beside it, exact optimizer resume, bad files."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import digest
from renderer.errors import RedcubeError
from renderer.models import build_model
from renderer.scene import Scene
from training.checkpoint import (
    DEFAULT_NAME, FORMAT, VERSION, Checkpoint, load_checkpoint, resolve, restore_optimizer, save_checkpoint,
)

# Importing torch.compile's machinery warns about torch.jit internals; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")

SCENE = Scene(fov_deg=55.0, supersample=2)


def small_model(kind="posemlp", **cfg):
    torch.manual_seed(0)
    return build_model(kind, {"width": 32, "layers": 3, **cfg}, SCENE)


def batch(n=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    poses = torch.rand(n, 5, generator=g) * torch.tensor([4.0, 0.0, 4.0, 6.28, 0.0]) - torch.tensor([2.0, -1.0, 2.0, 0.0, 0.0])
    uv = torch.rand(n, 2, generator=g) * 2 - 1
    return poses, uv, torch.rand(n, 3, generator=g)


def adam_step(model, opt, data):
    poses, uv, target = data
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(poses, uv), target)
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.parametrize("kind", ["posemlp", "siren"])
def test_round_trip_gives_identical_outputs(tmp_path, kind):
    model = small_model(kind, input="plucker")
    path = save_checkpoint(tmp_path / "run" / "ckpt.safetensors", model, SCENE, step=17, metrics={"psnr": 21.5},
                           train={"lr": 1e-3, "res": 32})
    assert path == tmp_path / "run" / "ckpt.safetensors" and path.exists()
    ck = load_checkpoint(path)
    assert ck.kind == kind and ck.step == 17 and ck.scene == SCENE
    assert ck.record["metrics"] == {"psnr": 21.5} and ck.record["train"] == {"lr": 1e-3, "res": 32}
    assert ck.record["format"] == FORMAT and ck.record["version"] == VERSION
    assert ck.record["model"]["config"]["input"] == "plucker"
    assert ck.record["model"]["parameters"] == sum(p.numel() for p in model.parameters())
    loaded = ck.build_model()
    assert type(loaded) is type(model) and loaded.config == model.config and loaded.scene == SCENE
    poses, uv, _ = batch()
    with torch.no_grad():
        assert torch.equal(loaded(poses, uv), model(poses, uv))
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    # No temp files are left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.json", "ckpt.safetensors"]


def test_json_record_matches_safetensors_metadata(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", small_model(), SCENE, step=3, metrics={"ssim": 0.9},
                           extra={"note": "hello"})
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["redcube"])
        keys = set(f.keys())
    beside = json.loads(path.with_suffix(".json").read_text())
    assert beside == meta == load_checkpoint(path).record
    assert beside["note"] == "hello" and beside["scene"]["fov_deg"] == 55.0
    assert keys == {f"model.{k}" for k in small_model().state_dict()}


def test_resolve_paths(tmp_path):
    assert resolve(tmp_path) == tmp_path / DEFAULT_NAME
    assert resolve(tmp_path / "a.json") == tmp_path / "a.safetensors"
    save_checkpoint(tmp_path, small_model(), SCENE)  # a run directory
    assert (tmp_path / DEFAULT_NAME).exists() and (tmp_path / "checkpoint.json").exists()
    assert load_checkpoint(tmp_path).kind == "posemlp"
    assert load_checkpoint(tmp_path / "checkpoint.json").kind == "posemlp"


def test_optimizer_state_round_trip_gives_a_bit_identical_next_step(tmp_path):
    data = batch()
    model = small_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.8, 0.95), weight_decay=1e-4)
    for _ in range(3):
        adam_step(model, opt, data)
    path = save_checkpoint(tmp_path / "c.safetensors", model, SCENE, step=3, optimizer=opt)
    ck = load_checkpoint(path)
    assert ck.record["optimizer"]["type"] == "Adam"
    assert any(k.startswith("optim.") for k in ck.tensors)

    resumed = ck.build_model()
    opt2 = torch.optim.Adam(resumed.parameters(), lr=1.0)  # hyperparameters come from the checkpoint
    restore_optimizer(opt2, ck)
    assert opt2.param_groups[0]["lr"] == 3e-3 and tuple(opt2.param_groups[0]["betas"]) == (0.8, 0.95)

    next_data = batch(seed=2)
    assert adam_step(model, opt, next_data) == adam_step(resumed, opt2, next_data)
    for a, b in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(opt.state.values(), opt2.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_restore_optimizer_refuses_a_mismatch(tmp_path, one_sentence):
    model = small_model()
    no_opt = load_checkpoint(save_checkpoint(tmp_path / "a.safetensors", model, SCENE))
    with pytest.raises(RedcubeError, match="no optimizer state") as e:
        restore_optimizer(torch.optim.Adam(model.parameters()), no_opt)
    one_sentence(str(e.value))
    opt = torch.optim.Adam(model.parameters())
    adam_step(model, opt, batch())
    ck = load_checkpoint(save_checkpoint(tmp_path / "b.safetensors", model, SCENE, optimizer=opt))
    with pytest.raises(RedcubeError, match="Adam") as e:
        restore_optimizer(torch.optim.SGD(model.parameters(), lr=0.1), ck)
    one_sentence(str(e.value))


def test_extra_tensors_round_trip(tmp_path):
    rng = torch.get_rng_state()
    path = save_checkpoint(tmp_path / "c.safetensors", small_model(), SCENE, extra_tensors={"rng.torch": rng})
    assert torch.equal(load_checkpoint(path).prefixed("rng.")["torch"], rng)


def test_compiled_model_saves_without_prefix(tmp_path):
    model = small_model()
    t0 = time.perf_counter()
    compiled = torch.compile(model)
    if time.perf_counter() - t0 > 30:
        pytest.skip("torch.compile is too slow here")
    assert any(k.startswith("_orig_mod.") for k in compiled.state_dict())  # the trap this guards against
    path = save_checkpoint(tmp_path / "c.safetensors", compiled, SCENE)
    ck = load_checkpoint(path)
    assert not any("_orig_mod" in k for k in ck.tensors)
    assert set(ck.tensors) == {f"model.{k}" for k in model.state_dict()}
    poses, uv, _ = batch()
    with torch.no_grad():
        assert torch.equal(ck.build_model()(poses, uv), model(poses, uv))


@pytest.fixture
def saved(tmp_path):
    """A good checkpoint, the digests of its two files, and a second model's outputs to compare with."""
    path = save_checkpoint(tmp_path / "good.safetensors", small_model(), SCENE, step=5)
    return path, {p: digest(p) for p in (path, path.with_suffix(".json"))}


def corrupt(kind: str, good, tmp_path):
    data = good.read_bytes()
    bad = tmp_path / f"{kind}.safetensors"
    if kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "random":
        bad.write_bytes(os.urandom(4096))
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "no-record":
        save_file({"w": torch.zeros(3)}, str(bad))
    elif kind == "foreign-record":
        save_file({"w": torch.zeros(3)}, str(bad), metadata={"redcube": json.dumps({"hello": 1})})
    elif kind == "bad-json":
        save_file({"w": torch.zeros(3)}, str(bad), metadata={"redcube": "{not json"})
    elif kind == "newer":
        with safe_open(str(good), framework="pt") as f:
            record = json.loads(f.metadata()["redcube"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        record["version"] = VERSION + 1
        save_file(tensors, str(bad), metadata={"redcube": json.dumps(record)})
    return bad


@pytest.mark.parametrize("kind,words", [
    ("truncated", "not a readable safetensors"),
    ("random", "not a readable safetensors"),
    ("empty", "not a readable safetensors"),
    ("no-record", "not a redcube checkpoint"),
    ("foreign-record", "not a redcube checkpoint"),
    ("bad-json", "not a redcube checkpoint"),
    ("newer", "newer redcube"),
])
def test_bad_files_get_one_sentence_and_stay_unchanged(kind, words, saved, tmp_path, one_sentence):
    good, digests = saved
    bad = corrupt(kind, good, tmp_path)
    before = digest(bad)
    with pytest.raises(RedcubeError, match=words) as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value)
    one_sentence(str(e.value))
    assert digest(bad) == before
    assert all(digest(p) == d for p, d in digests.items())


def test_missing_file(tmp_path, one_sentence):
    with pytest.raises(RedcubeError, match="does not exist") as e:
        load_checkpoint(tmp_path / "nope.safetensors")
    one_sentence(str(e.value))


@pytest.mark.parametrize("change", [{"width": 64}, {"layers": 4}, {"skip": True}, {"n_freqs": 6}])
def test_weights_that_do_not_match_the_record(change, saved, tmp_path, one_sentence):
    good, _ = saved
    with safe_open(str(good), framework="pt") as f:
        record = json.loads(f.metadata()["redcube"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    record["model"]["config"].update(change)
    bad = tmp_path / "mismatch.safetensors"
    save_file(tensors, str(bad), metadata={"redcube": json.dumps(record)})
    before = digest(bad)
    ck = load_checkpoint(bad)
    with pytest.raises(RedcubeError, match="do not match") as e:
        ck.build_model()
    one_sentence(str(e.value))
    assert digest(bad) == before


def test_missing_weights_do_not_match(saved, one_sentence):
    good, _ = saved
    ck = load_checkpoint(good)
    tensors = {k: v for k, v in ck.tensors.items() if not k.endswith("out.bias")}
    with pytest.raises(RedcubeError, match="do not match") as e:
        Checkpoint(ck.record, tensors).build_model()
    assert "out.bias" in str(e.value)
    one_sentence(str(e.value))


def test_failed_save_keeps_the_previous_checkpoint(saved, one_sentence):
    """Writes are atomic: a save that fails half-way leaves the old files as they were, and no temp files."""
    good, digests = saved
    shared = torch.zeros(4)
    with pytest.raises(Exception):
        save_checkpoint(good, small_model(width=64), SCENE, extra_tensors={"a": shared, "b": shared})
    assert all(digest(p) == d for p, d in digests.items())
    assert sorted(p.name for p in good.parent.iterdir()) == ["good.json", "good.safetensors"]
    assert load_checkpoint(good).step == 5


def test_overwrite_replaces_both_files(saved):
    good, digests = saved
    save_checkpoint(good, small_model(), SCENE, step=6)
    assert load_checkpoint(good).step == 6
    assert json.loads(good.with_suffix(".json").read_text())["step"] == 6


def test_one_registry_loads_every_kind_and_refuses_the_wrong_one(tmp_path, one_sentence):
    from renderer.tinyvae import TinyVAE
    from training.checkpoint import LOADERS, load
    from training.mnif.diffusion import DenoiserConfig, LatentDiffusion
    from training.vae import save_vae

    posemlp = save_checkpoint(tmp_path / "p.safetensors", small_model(), SCENE)
    assert load(posemlp).kind == "posemlp"  # a network of renderer.models: built from its record
    vae = load(save_vae(tmp_path / "v.safetensors", TinyVAE(), SCENE))
    assert isinstance(vae, TinyVAE) and not vae.training
    ld = LatentDiffusion.for_latents(torch.randn(8, 4), DenoiserConfig(latent_dim=4, width=16, blocks=1))
    again = load(ld.save(tmp_path / "d.safetensors"))
    assert isinstance(again, LatentDiffusion) and again.mnif_hash == ld.mnif_hash
    for kind in LOADERS:
        with pytest.raises(RedcubeError) as e:
            load(posemlp, kind)
        one_sentence(str(e.value))
