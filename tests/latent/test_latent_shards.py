"""Pre-encoded latent shards: spawned workers and ranks write them, a rerun resumes a partial one bit-identically,
another VAE or res is refused in one sentence, and `train --latent --data shards` trains from them."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest
import torch

from app.cli import main
from conftest import torchrun
from renderer.errors import RedcubeError
from renderer.scene import Scene
from renderer.tinyvae import TinyVAE
from training.checkpoint import load_checkpoint
from training.data import heldout_poses
from training.distributed import Dist
from training.latent.trainer import LatentTrainConfig, trainer_for
from training.latent.shards import LatentSetConfig, frame_pose, generate, load_latents, read_shard, vae_record
from training.shards import shard_path
from training.vae import save_vae

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = LatentSetConfig(frames=3, res=128, shard_size=2, seed=4)  # 2 shards: frames 0-1 and 2


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """The set of CONFIG written by `redcube encode-latents` with two spawned workers, and its JSON summary."""
    out = tmp_path_factory.mktemp("latents") / "set"
    argv = ["encode-latents", "--res", "128", "--frames", "3", "--shard-size", "2", "--vae", "scene", "--out", str(out),
            "--workers", "2", "--seed", "4", "--quiet"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return out, json.loads(buf.getvalue())


@pytest.fixture
def copy(encoded, tmp_path):
    shutil.copytree(encoded[0], tmp_path / "set")
    return tmp_path / "set"


@pytest.fixture(scope="module")
def other_vae(tmp_path_factory):
    torch.manual_seed(1)
    return str(save_vae(tmp_path_factory.mktemp("vae") / "random.safetensors", TinyVAE(), Scene()))


def test_two_workers_write_two_shards_that_read_back(encoded):
    out, summary = encoded
    assert summary["shards_made"] == 2 and summary["frames_made"] == 3 and summary["workers"] == 2
    poses, latents, manifest = load_latents(out, vae_record("scene"), 128, Scene().to_dict())
    assert poses.shape == (3, 5) and latents.shape == (3, 16, 16, 4) and torch.isfinite(latents).all()
    assert torch.equal(poses, torch.stack([frame_pose(CONFIG, i) for i in range(3)]))
    assert not (poses[:, None] == heldout_poses(Scene(), 8, CONFIG.seed)[None]).all(-1).any()  # never a held-out pose
    tensors, record = read_shard(shard_path(out, 0))
    assert tensors["latents"].shape == (2, 4, 16, 16) and tensors["poses"].shape == (2, 5)
    assert record["vae"]["name"] == "scene" and record["vae"]["source"] == "scene" and record["res"] == 128
    assert Scene.from_dict(record["scene"]) == Scene() and record["seeds"]["set"] == 4 and manifest["n_shards"] == 2
    assert latents.std() > 0.1 and not torch.equal(latents[0], latents[1])  # real encodings of different views


def test_a_rank_makes_its_own_shards_and_a_frame_does_not_depend_on_the_split(encoded, tmp_path):
    split = LatentSetConfig(frames=3, res=128, shard_size=1, seed=4)
    summary = generate(split, tmp_path / "r1", dist=Dist(rank=1, world=2), log=lambda s: None)
    assert summary["shards_made"] == 1 and [p.name for p in (tmp_path / "r1").glob("shard_*")] == ["shard_00001.safetensors"]
    assert not (tmp_path / "r1" / "dataset.json").exists()  # rank 0 writes the manifest
    mine, _ = read_shard(shard_path(tmp_path / "r1", 1))
    whole, _ = read_shard(shard_path(encoded[0], 0))
    assert torch.equal(mine["poses"][0], whole["poses"][1]) and torch.equal(mine["latents"][0], whole["latents"][1])


def test_truncated_shard_is_named_and_regenerated_bit_identically(copy, one_sentence):
    before = {k: v.clone() for k, v in read_shard(shard_path(copy, 1))[0].items()}  # a copy: the file is memory-mapped
    kept = shard_path(copy, 0).stat().st_mtime_ns
    whole = shard_path(copy, 1).read_bytes()
    shard_path(copy, 1).write_bytes(whole[: len(whole) // 2])
    with pytest.raises(RedcubeError) as e:
        load_latents(copy, vae_record("scene"), 128, Scene().to_dict())
    one_sentence(str(e.value))
    lines = []
    summary = generate(CONFIG, copy, log=lines.append)
    assert summary["shards_made"] == 1 and summary["shards_skipped"] == 1
    said = next(l for l in lines if "partial" in l)
    assert "shard_00001" in said
    one_sentence(said)
    assert shard_path(copy, 0).stat().st_mtime_ns == kept  # the whole shard was skipped, not rewritten
    again, _ = read_shard(shard_path(copy, 1))
    assert all(torch.equal(again[k], before[k]) for k in before)  # same render, same encoding, bit for bit


def test_another_vae_or_res_is_refused_in_one_sentence(copy, other_vae, tmp_path, one_sentence):
    saved = {p.name: p.read_bytes() for p in copy.iterdir()}
    run = dict(res=128, steps=2, batch_size=256, heldout=1, threads=1, data="shards", shards=str(copy))
    calls = [lambda: generate(LatentSetConfig(frames=3, res=128, shard_size=2, seed=4, vae=other_vae), copy),
             lambda: generate(LatentSetConfig(frames=3, res=256, shard_size=2, seed=4), copy),
             lambda: load_latents(copy, vae_record(other_vae), 128, Scene().to_dict()),
             lambda: load_latents(copy, vae_record("scene"), 256, Scene().to_dict()),
             lambda: trainer_for(LatentTrainConfig(**run, vae=other_vae, out_dir=str(tmp_path / "a"))).run(),
             lambda: trainer_for(LatentTrainConfig(**run, out_dir=str(tmp_path / "b")), scene=Scene(sky_color=(0.1, 0.2, 0.3))).run(),
             lambda: LatentTrainConfig(res=128, steps=2, data="shards"),
             lambda: generate(CONFIG, tmp_path / "x", dist=Dist(rank=0, world=3))]
    for call in calls:
        with pytest.raises(RedcubeError) as e:
            call()
        one_sentence(str(e.value))
    assert "weights" in str(pytest.raises(RedcubeError, calls[2]).value)
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == saved  # nothing touched


def test_train_latent_from_shards_writes_a_loadable_checkpoint(encoded, tmp_path, capsys):
    run = tmp_path / "run"

    def train(steps: int) -> list[str]:
        return ["train", "--latent", "--data", "shards", "--shards", str(encoded[0]), "--res", "128", "--steps", str(steps),
                "--batch-size", "512", "--heldout", "2", "--warmup-steps", "1", "--threads", "1", "--out", str(run), "--quiet"]

    assert main(train(3)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 3 and torch.isfinite(torch.tensor(out["test_loss"]))
    ckpt = load_checkpoint(run)
    assert ckpt.record["train"]["data"] == "shards" and ckpt.record["vae"]["source"] == "scene" and ckpt.step == 3
    assert ckpt.build_model()  # the weights load into the recorded model
    start = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["data"] == "shards"
    assert main(train(4) + ["--resume"]) == 0 and load_checkpoint(run).step == 4  # a latent shard run resumes
    assert main(["train", "--data", "shards", "--steps", "1", "--out", str(tmp_path / "p")]) == 2  # pixel mode: refused
    assert "latent mode" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_ranks_split_the_shards(tmp_path):
    """Two real gloo ranks under torchrun: each encodes its own shard, rank 0 reports the totals."""
    out = tmp_path / "set"
    p = torchrun(["-m", "app.cli", "encode-latents", "--res", "128", "--frames", "3", "--shard-size", "2",
                  "--seed", "4", "--out", str(out), "--quiet"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    assert summary["world_size"] == 2 and summary["frames_made"] == 3 and [r["shards_made"] for r in summary["ranks"]] == [1, 1]
    poses, _, _ = load_latents(out, vae_record("scene"), 128, Scene().to_dict())
    assert torch.equal(poses, torch.stack([frame_pose(CONFIG, i) for i in range(3)]))
    # every rank trains on all the shards, rank 0 writes the one checkpoint, which resumes on one rank
    run = tmp_path / "run"

    def train(steps: int) -> list[str]:
        return ["train", "--latent", "--data", "shards", "--shards", str(out), "--res", "128", "--steps", str(steps),
                "--batch-size", "256", "--heldout", "1", "--warmup-steps", "1", "--threads", "1", "--quiet", "--out", str(run)]

    p = torchrun(["-m", "app.cli", *train(2)], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    start = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert start["world_size"] == 2 and len({r["heldout_sum"] for r in start["ranks"]}) == 1
    assert main(train(3) + ["--resume"]) == 0 and load_checkpoint(run).step == 3
