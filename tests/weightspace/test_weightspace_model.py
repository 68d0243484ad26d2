"""The weight-space autoencoder (seed 004): a tiny training run on real fitted fields lowers every loss term."""

from __future__ import annotations

import json

import pytest
import torch

from app.cli import main

from renderer.errors import RedcubeError
from renderer.hashgrid import HashGridConfig
from renderer.models import build_model
from renderer.models.object_field import ObjectFieldConfig
from renderer.scene import Scene
from training.checkpoint import save_checkpoint
from renderer.polycubes import polycube
from renderer.quaternions import random_quaternions
from training.ngp_dataset import DatasetConfig, generate, load_fields
from training.ngp_fields import FitConfig, fit_field
from training.weightspace.data import PairSampler, split_objects
from training.weightspace.train import EvalSet, WeightSpaceTrainConfig, evaluate, load_weightspace, train_weightspace, WeightSpaceTrainer
from training.weightspace.losses import loss_terms, nt_xent
from training.weightspace.model import WeightSpaceAutoencoder, WeightSpaceConfig
from training.weightspace.tokens import Tokenizer, sample_token_points

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = WeightSpaceConfig(embed=32, latent=8, heads=2, layers=1, dropout=0.0, ntx_hidden=16, ntx_dim=8)


def _pairs(objects: int = 3):
    """Two fields (two random rotations) of each of `objects` polycubes, briefly fitted: flat vectors [2, B, P], quaternions."""
    q = random_quaternions(2 * objects, seed=8).reshape(2, objects, 4)
    fields = [[fit_field(polycube(o), q[v, o], FitConfig(steps=8, points=256), seed=o)[0] for o in range(objects)] for v in range(2)]
    return torch.stack([torch.stack([f.flat() for f in view]) for view in fields]), q, fields[0][0].layout()


def test_a_tiny_training_run_lowers_every_loss_term():
    flat, q, layout = _pairs()
    tok = Tokenizer(layout, sample_token_points(32, seed=1), n_pos=4)
    a, b = tok.tokenize(flat[0]), tok.tokenize(flat[1])
    scale = a.abs().amax() + 1e-8  # one global scale keeps the tiny model's targets near unit size
    a, b = a / scale, b / scale
    torch.manual_seed(0)
    model = WeightSpaceAutoencoder(TINY, tok)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    _, before = loss_terms(model, a, b, q[0], q[1], tok.mask)
    for _ in range(80):
        total, _ = loss_terms(model, a, b, q[0], q[1], tok.mask)
        opt.zero_grad()
        total.backward()
        opt.step()
    _, after = loss_terms(model, a, b, q[0], q[1], tok.mask)
    assert all(after[k] < before[k] for k in before), (before, after)
    z = model.encode(a)
    assert z.shape == (3, tok.n_tokens, TINY.latent) and model.relative_rotation(z, z).shape == (3, 4)


def test_nt_xent_prefers_matching_pairs_and_configs_are_checked(one_sentence):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 8, generator=g)
    assert float(nt_xent(x, x)) < float(nt_xent(x, x.roll(1, 0)))
    with pytest.raises(RedcubeError) as e:
        WeightSpaceConfig(embed=30, heads=4)
    one_sentence(str(e.value))


def test_pair_batches_hold_two_rotations_of_distinct_objects(tmp_path, one_sentence):
    out = tmp_path / "ds"
    generate(DatasetConfig(objects=4, rotations=2, shard_size=4, fit=FitConfig(steps=2, points=64)), out, log=lambda s: None)
    fields, manifest = load_fields(out)
    tok = Tokenizer(manifest["layout"], sample_token_points(16, seed=0), n_pos=2)
    train, held = split_objects(fields["object_ids"], heldout=1, seed=0)
    assert len(train) == 3 and len(held) == 1 and not set(train.tolist()) & set(held.tolist())
    plain = PairSampler(fields, tok, train, permute=False, noise_std=0.0)
    batch = plain.batch(3, torch.Generator().manual_seed(0))
    assert sorted(batch.objects.tolist()) == train.tolist()  # distinct objects, none held out
    for i, o in enumerate(batch.objects.tolist()):
        rows = (fields["object_ids"] == o).nonzero().squeeze(1)
        views = [tok.tokenize(fields["params"][r]) for r in rows]
        assert any(torch.equal(batch.tokens_a[i], v) for v in views) and any(torch.equal(batch.tokens_b[i], v) for v in views)
    assert not torch.equal(batch.q_a, batch.q_b)  # two different rotations of each object
    noisy = PairSampler(fields, tok, train).batch(2, torch.Generator().manual_seed(0))
    assert noisy.tokens_a.shape == (2, tok.n_tokens, tok.dim)
    with pytest.raises(RedcubeError) as e:
        plain.batch(5, torch.Generator())
    one_sentence(str(e.value))
    single = {k: v[fields["rotation_ids"] == 0] for k, v in fields.items()}
    with pytest.raises(RedcubeError) as e:
        PairSampler(single, tok, train)
    one_sentence(str(e.value))


def test_train_weightspace_evaluates_saves_and_reloads(tiny_fields, tmp_path, one_sentence):
    data = tiny_fields
    config = WeightSpaceTrainConfig(data=str(data), steps=6, batch=2, points=16, n_pos=2, heldout=2, eval_every=3,
                                    out=str(tmp_path / "run"), model=TINY)
    records = []
    metrics = train_weightspace(config, log=records.append)
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6] and metrics["split"] == "heldout" and metrics["pairs"] == 4
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    logged = [r for r in logged if r["event"] == "eval"]
    assert logged == evals and {"median_rotation_error_deg", "train_rotation_error_deg", "lr"} <= set(logged[0])
    assert 0 <= metrics["median_rotation_error_deg"] <= 180 and metrics["retrieval_top1"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    model, tok, scales, record = load_weightspace(tmp_path / "run")
    assert record["metrics"]["retrieval_top1"] == metrics["retrieval_top1"] and scales.shape == (tok.n_tokens, 1)
    fields, _ = load_fields(data)
    tokens = tok.tokenize(fields["params"][:2]) / scales
    with torch.no_grad():
        again = evaluate(model, EvalSet(tokens, fields["quaternions"][:2], fields["object_ids"][:2]), tok.mask)
    assert again["median_rotation_error_deg"] >= 0 and again["pairs"] == 2 and again["objects"] == 1
    other = build_model("posemlp", None, Scene())
    save_checkpoint(tmp_path / "other.safetensors", other, Scene())
    with pytest.raises(RedcubeError) as e:
        load_weightspace(tmp_path / "other.safetensors")
    one_sentence(str(e.value))


def test_learning_rate_warms_up_then_decays_by_steps_or_clock(tiny_fields, tmp_path):
    c = WeightSpaceTrainConfig(data=str(tiny_fields), steps=100, lr=1e-3, warmup=0.1, minutes=1.0, batch=2, points=16,
                               n_pos=2, out=str(tmp_path), model=TINY)
    engine = WeightSpaceTrainer(c)

    def lr_at(step: int, elapsed: float) -> float:
        engine.step, engine.elapsed = step, elapsed
        engine.set_lr()
        return engine.lr()
    by_step = [lr_at(s, 0.0) for s in (1, 10, 55, 100)]
    assert by_step[0] < by_step[1] == pytest.approx(1e-3) and by_step[1] > by_step[2] > by_step[3] == pytest.approx(5e-5)
    assert lr_at(1, 60.0) == pytest.approx(5e-5)  # the clock ran out first: the end of the schedule
    engine._release()


def test_train_weightspace_stops_on_its_clock(tiny_fields, tmp_path):
    config = WeightSpaceTrainConfig(data=str(tiny_fields), steps=10_000, batch=2, points=16, n_pos=2, heldout=2,
                                    eval_every=1000, minutes=0.02, out=str(tmp_path / "run"), model=TINY)
    metrics = train_weightspace(config)
    assert 1 <= metrics["steps"] < 10_000 and (tmp_path / "run" / "checkpoint.safetensors").exists()
    assert load_weightspace(tmp_path / "run")[3]["step"] == metrics["steps"]


def test_train_weightspace_command_line(tiny_fields, tmp_path, capsys, one_sentence):
    small = ["--steps", "2", "--batch", "2", "--embed", "16", "--latent", "4", "--layers", "1", "--heads", "2", "--points", "8",
             "--pos-tokens", "2", "--heldout", "2"]
    assert main(["train-weightspace", "--data", str(tiny_fields), *small, "--out", str(tmp_path / "run")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"median_rotation_error_deg", "retrieval_top1", "recon_mse"} <= set(out) and (tmp_path / "run" / "checkpoint.json").exists()
    assert out["chance_retrieval_top1"] == pytest.approx(1 / 3)  # 2 held-out objects x 2 rotations: 1 of 3 others
    assert (tmp_path / "run" / "curves.png").stat().st_size > 10_000
    assert main(["train-weightspace", "--data", str(tmp_path / "nowhere"), *small, "--out", str(tmp_path / "run2")]) == 2
    one_sentence(capsys.readouterr().err.strip().removeprefix("redcube: error: "))


def test_eval_weightspace_reports_the_issue_targets(tiny_fields, tmp_path, capsys, error_line):
    run = tmp_path / "run"
    config = WeightSpaceTrainConfig(data=str(tiny_fields), steps=2, batch=2, points=16, n_pos=2, heldout=2, out=str(run),
                                    model=TINY)
    train_weightspace(config)
    assert main(["eval-weightspace", str(run), "--data", str(tiny_fields), "--res", "16", "--views", "1",
                 "--samples", "24", "--psnr-fields", "1", "--json", str(tmp_path / "eval.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"median_rotation_error_deg", "retrieval_top1", "decoded_psnr_drop_db"} <= set(out)
    assert out["split"] == "heldout" and out["psnr_fields"] == 1 and json.loads((tmp_path / "eval.json").read_text()) == out
    assert abs(out["decoded_psnr_drop_db"] - (out["original_psnr"] - out["decoded_psnr"])) < 1e-9
    unseen = tmp_path / "unseen"  # another seed: other objects, so every one of them is evaluated
    generate(DatasetConfig(objects=3, rotations=2, seed=7, fit=FitConfig(steps=1, points=32)), unseen, log=lambda s: None)
    assert main(["eval-weightspace", str(run), "--data", str(unseen), "--res", "16", "--views", "1", "--samples", "24",
                 "--psnr-fields", "1"]) == 0
    assert (lambda o: (o["split"], o["pairs"]))(json.loads(capsys.readouterr().out)) == ("unseen data set", 6)
    other = tmp_path / "other"  # fields of another hash-grid layout
    grid = HashGridConfig(n_levels=4, n_features_per_level=2, log2_hashmap_size=10, base_resolution=8, per_level_scale=1.5)
    generate(DatasetConfig(objects=2, rotations=2, fit=FitConfig(steps=1, points=32), field=ObjectFieldConfig(grid=grid)),
             other, log=lambda s: None)
    assert main(["eval-weightspace", str(run), "--data", str(other), "--res", "16"]) == 2
    assert "layout" in error_line(capsys.readouterr().err)
