"""Weight-space tokens of NGP fields (seed 004): exact round trip, agreement with the hash grid, augmentations, rotation loss."""

from __future__ import annotations

import math

import pytest
import torch

from renderer.errors import RedcubeError
from renderer.hashgrid import corner_weights, corner_indices
from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.quaternions import matrix, random_quaternions
from training.weightspace.augment import multiplicative_noise, permute_mlp
from training.weightspace.losses import geodesic_loss, relative_rotation
from training.weightspace.tokens import HASH, MLP, POS, Tokenizer, grid_of, sample_token_points

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def field() -> ObjectField:
    torch.manual_seed(3)
    f = ObjectField(ObjectFieldConfig())
    with torch.no_grad():
        f.encoding.params.normal_()  # distinct values everywhere, so a misplaced one shows
    return f


@pytest.fixture(scope="module")
def tokenizer(field) -> Tokenizer:
    return Tokenizer(field.layout(), sample_token_points(380, seed=0), n_pos=10)


def test_tokenize_then_detokenize_is_exact(field, tokenizer):
    flat = torch.stack([field.flat(), -2 * field.flat()])
    tokens = tokenizer.tokenize(flat)
    assert tokens.shape == (2, 380 + int((tokenizer.kind == MLP).sum()) + 10, 8 * 8 * 2)
    alone = tokenizer.detokenize(tokens)  # what the tokens hold, zeros elsewhere
    held = tokenizer.counts > 0
    assert torch.equal(alone[:, held], flat[:, held]) and (alone[:, ~held] == 0).all()
    n_hash = field.layout()["hash_params"]
    assert held[n_hash:].all() and 0.3 < tokenizer.coverage < 1.0  # every MLP parameter, part of the hash table
    mlp = tokenizer.index[(tokenizer.kind == MLP)[:, None] & tokenizer.mask]
    assert len(mlp) == len(mlp.unique()) == flat.shape[1] - n_hash  # each MLP parameter sits in exactly one token
    assert (tokens[:, tokenizer.kind == POS] == 0).all() and (tokens * ~tokenizer.mask == 0).all()


def test_hash_tokens_are_the_corner_features_the_grid_interpolates(field, tokenizer):
    """Weighting a hash token's 8 corners per level by the trilinear weights gives the grid's own encoding."""
    m = len(tokenizer.points)
    cfg = field.config.grid
    tokens = tokenizer.tokenize(field.flat())[:m].reshape(m, cfg.n_levels, 8, cfg.n_features_per_level)
    _, frac = corner_indices(cfg, field.encoding.levels, tokenizer.points)
    mixed = (tokens * corner_weights(frac, cfg.interpolation)[..., None]).sum(2).reshape(m, -1)
    with torch.no_grad():
        assert torch.allclose(mixed, field.encoding(tokenizer.points), atol=1e-5)


def test_positional_inputs_name_place_group_and_point(tokenizer):
    c = tokenizer.n_tokens
    assert torch.equal(tokenizer.nlk[:, 0], torch.arange(c))
    groups = tokenizer.nlk[:, 1]
    assert (groups[tokenizer.kind == HASH] == 0).all() and (groups[tokenizer.kind == POS] == 4).all()
    assert sorted(groups[tokenizer.kind == MLP].unique().tolist()) == [1, 2, 3]  # the three Linear layers
    assert torch.equal(tokenizer.nlk[tokenizer.kind == POS, 2], torch.arange(10))
    assert torch.equal(tokenizer.xyz[:380], tokenizer.points) and (tokenizer.xyz[380:] == 0).all()


def test_bad_inputs_are_one_sentence(field, tokenizer, one_sentence):
    layout = field.layout()
    other = dict(layout, levels=layout["levels"][:-1] + [dict(layout["levels"][-1], size=8)])
    for call in (lambda: tokenizer.tokenize(torch.zeros(5)),
                 lambda: tokenizer.detokenize(torch.zeros(3, 7)),
                 lambda: Tokenizer(layout, torch.full((4, 3), 1.5)),
                 lambda: grid_of(other)):
        with pytest.raises(RedcubeError) as e:
            call()
        one_sentence(str(e.value))


def test_a_permuted_mlp_gives_the_same_field(field):
    g = torch.Generator().manual_seed(0)
    flat = field.flat()
    permuted = permute_mlp(torch.stack([flat, flat]), field.layout(), g)
    assert not torch.equal(permuted[0], flat) and not torch.equal(permuted[0], permuted[1])
    assert torch.equal(permuted[0][:field.encoding.n_params], flat[:field.encoding.n_params])  # the hash grid stays
    assert torch.equal(permuted[0].sort().values, flat.sort().values)  # the same numbers, moved
    x = torch.rand(256, 3) + torch.tensor([-0.5, 0.5, -0.5])
    other = ObjectField(ObjectFieldConfig()).load_flat(permuted[1])
    with torch.no_grad():
        assert torch.allclose(other.raw(x), field.raw(x), atol=1e-5)
    noisy = multiplicative_noise(flat, 0.1, g)
    ratio = noisy[flat != 0] / flat[flat != 0]
    assert 0.08 < float(ratio.std()) < 0.12 and abs(float(ratio.mean()) - 1) < 0.01


def test_geodesic_loss_is_zero_for_q_and_minus_q():
    q = random_quaternions(8, seed=5)
    assert float(geodesic_loss(q, q)) < 1e-12 and float(geodesic_loss(-q, q)) < 1e-12
    assert float(geodesic_loss(3 * q, q)) < 1e-12  # the prediction's norm does not matter
    quarter = torch.tensor([[math.cos(math.pi / 8), math.sin(math.pi / 8), 0.0, 0.0]])  # 45 degrees about x
    assert abs(float(geodesic_loss(quarter, torch.tensor([[1.0, 0, 0, 0]]))) - (math.pi / 4) ** 2) < 1e-5
    pred = q.clone().requires_grad_(True)
    geodesic_loss(pred, q).backward()
    assert torch.isfinite(pred.grad).all()  # finite where arccos's gradient would not be
    a, b = q[:4], q[4:]
    rel = relative_rotation(a, b)
    assert torch.allclose(matrix(rel) @ matrix(a), matrix(b), atol=1e-5)
