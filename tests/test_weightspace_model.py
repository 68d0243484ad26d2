"""The weight-space autoencoder (seed 004): a tiny training run on real fitted fields lowers every loss term."""

from __future__ import annotations

import pytest
import torch

from renderer.errors import RedcubeError
from renderer.polycubes import polycube
from renderer.quaternions import random_quaternions
from training.ngp_dataset import DatasetConfig, generate, load_fields
from training.ngp_fields import FitConfig, fit_field
from training.weightspace_data import PairSampler, split_objects
from training.weightspace_losses import loss_terms, nt_xent
from training.weightspace_model import WeightSpaceAutoencoder, WeightSpaceConfig
from training.weightspace_tokens import Tokenizer, sample_token_points

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
