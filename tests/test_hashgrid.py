"""The hash-grid encoding: tiny-cuda-nn's index, layout and interpolation, gradients, bad configs."""

from __future__ import annotations

import pytest
import torch

from renderer import cpu_kernels
from renderer.errors import RedcubeError
from renderer.hashgrid import PRIMES, HashGrid, HashGridConfig, corner_indices, grid_levels

U32 = 0xFFFFFFFF


def small_config(**kw) -> HashGridConfig:
    # level 0: scale 1, resolution 2 (8 entries, dense); level 1: scale 5, resolution 6 (216 > 64: hashed)
    return HashGridConfig(**{"n_levels": 2, "n_features_per_level": 1, "log2_hashmap_size": 6,
                             "base_resolution": 2, "per_level_scale": 3.0, **kw})


def test_level_sizes_and_offsets_round_as_tiny_cuda_nn():
    lv = grid_levels(small_config())
    assert [(v.scale, v.resolution, v.size, v.offset, v.dense) for v in lv] == [(1.0, 2, 8, 0, True), (5.0, 6, 64, 8, False)]
    # sizes round up to a multiple of 8: 3^3 = 27 -> 32, 5^3 = 125 -> 128 (scale 3.5 -> resolution ceil(3.5) + 1 = 5)
    lv = grid_levels(HashGridConfig(n_levels=3, base_resolution=3, per_level_scale=1.5, log2_hashmap_size=8))
    assert [(v.resolution, v.size, v.offset) for v in lv] == [(3, 32, 0), (5, 128, 32), (7, 256, 160)]
    assert [v.dense for v in lv] == [True, True, False]  # 7^3 = 343 > 256 entries: hashed
    # tiny-cuda-nn's NeRF defaults: 16 levels from 16, factor 2, T = 2^19: dense up to 64^3, then hashed
    lv = grid_levels(HashGridConfig())
    assert [v.size for v in lv[:4]] == [4096, 32768, 262144, 524288] and lv[3].offset == 4096 + 32768 + 262144
    grid = HashGrid(small_config(n_features_per_level=4))
    assert grid.n_params == (8 + 64) * 4 and grid.params.shape == (288,)
    assert grid.params.abs().max() <= 1e-4  # small uniform init


def test_dense_and_hashed_indices_match_hand_computed_values():
    cfg = small_config()
    x = torch.tensor([[0.25, 0.5, 0.75]])
    idx, frac = corner_indices(cfg, grid_levels(cfg), x)
    # level 0: pos = x * 1 + 0.5 = (0.75, 1.0, 1.25) -> cell (0, 1, 1); corner k adds bit d of k along dimension d
    assert torch.equal(frac[0, 0], torch.tensor([0.75, 0.0, 0.25]))
    dense = [(0 + bx) + (1 + by) * 2 + (1 + bz) * 4 for k in range(8) for bx, by, bz in [((k >> 0) & 1, (k >> 1) & 1, (k >> 2) & 1)]]
    assert dense == [6, 7, 8, 9, 10, 11, 12, 13]
    assert idx[0, 0].tolist() == [d % 8 for d in dense] == [6, 7, 0, 1, 2, 3, 4, 5]
    # level 1: pos = x * 5 + 0.5 = (1.75, 3.0, 4.25) -> cell (1, 3, 4); coherent prime hash mod 64, offset 8
    hashed = []
    for k in range(8):
        c = (1 + (k & 1), 3 + ((k >> 1) & 1), 4 + ((k >> 2) & 1))
        h = ((c[0] * PRIMES[0]) & U32) ^ ((c[1] * PRIMES[1]) & U32) ^ ((c[2] * PRIMES[2]) & U32)
        hashed.append(8 + h % 64)
    # corner 0 by hand: 3 * 2654435761 mod 2^32 = 3668339987, 4 * 805459861 mod 2^32 = 3221839444,
    # 1 ^ 3668339987 ^ 3221839444 = 447689542 = 6 (mod 64): row 8 + 6
    assert (1 ^ 3668339987 ^ 3221839444) % 64 == 6 and hashed[0] == 14
    assert idx[0, 1].tolist() == hashed


def test_interpolation_is_exact_at_vertices_and_output_is_level_major():
    cfg = small_config(n_features_per_level=2)
    grid = HashGrid(cfg)
    with torch.no_grad():
        grid.params.copy_(torch.randn(grid.n_params))
    table = grid.table().detach()
    # level 1 vertex (2, 3, 1): pos = x * 5 + 0.5 lands exactly on it
    v = torch.tensor([2.0, 3.0, 1.0])
    x = ((v - 0.5) / 5).reshape(1, 3)
    out = grid(x)
    idx, frac = corner_indices(cfg, grid.levels, x)
    assert torch.allclose(frac[0, 1], torch.zeros(3), atol=1e-6)
    assert out.shape == (1, 4)
    torch.testing.assert_close(out[0, 2:4], table[idx[0, 1, 0]], atol=1e-5, rtol=1e-5)  # features of level 1 in columns 2:4
    for interpolation in ("linear", "smoothstep"):
        g = HashGrid(small_config(n_features_per_level=2, interpolation=interpolation))
        g.load_state_dict(grid.state_dict())
        torch.testing.assert_close(g(x)[0, 2:4], table[idx[0, 1, 0]], atol=1e-5, rtol=1e-5)


def test_smoothstep_weights_differ_from_linear_between_vertices():
    x = torch.rand(16, 3, generator=torch.Generator().manual_seed(0))
    lin, smooth = HashGrid(small_config()), HashGrid(small_config(interpolation="smoothstep"))
    smooth.load_state_dict(lin.state_dict())
    assert not torch.allclose(lin(x), smooth(x))
    # weights sum to one either way: a constant table encodes to that constant
    for g in (lin, smooth):
        with torch.no_grad():
            g.params.fill_(0.5)
        torch.testing.assert_close(g(x), torch.full((16, 2), 0.5))


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_gradcheck_params_and_inputs(interpolation):
    torch.manual_seed(0)
    grid = HashGrid(small_config(n_features_per_level=2, interpolation=interpolation)).double()
    with torch.no_grad():
        grid.params.copy_(torch.randn(grid.n_params, dtype=torch.float64))
    x = (torch.rand(6, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()  # away from cell faces
    from renderer.hashgrid import _HashGridFunction
    assert torch.autograd.gradcheck(lambda x, p: _HashGridFunction.apply(x, p, grid), (x, grid.params), eps=1e-6, atol=1e-5)


def test_backward_scatter_matches_autograd_through_indexing():
    torch.manual_seed(0)
    cfg = HashGridConfig(n_levels=4, log2_hashmap_size=8, base_resolution=4, per_level_scale=2.0)
    grid = HashGrid(cfg)
    grid.chunk = 7  # several backward chunks
    x, g = torch.rand(50, 3), torch.randn(50, 8)
    (grid(x) * g).sum().backward()
    ref = grid.params.detach().clone().requires_grad_()
    idx, frac = corner_indices(cfg, grid.levels, x)
    from renderer.hashgrid import corner_weights
    out = (ref.view(-1, 2)[idx] * corner_weights(frac, "linear")[..., None]).sum(2).reshape(50, -1)
    (out * g).sum().backward()
    torch.testing.assert_close(grid.params.grad, ref.grad)


@pytest.mark.parametrize("bad,needle", [
    ({"n_features_per_level": 3}, "n_features_per_level"),
    ({"interpolation": "cubic"}, "interpolation"),
    ({"backend": "cuda"}, "backend"),
    ({"log2_hashmap_size": 40}, "log2_hashmap_size"),
])
def test_bad_configs_are_one_sentence(bad, needle, one_sentence):
    with pytest.raises(RedcubeError) as e:
        HashGridConfig(**bad)
    one_sentence(str(e.value))
    assert needle in str(e.value)


def test_tcnn_requested_but_missing_and_layout_mismatch(one_sentence, monkeypatch):
    import renderer.hashgrid as hg

    monkeypatch.setattr(hg, "tcnn_available", lambda: False)
    with pytest.raises(RedcubeError, match="tinycudann") as e:
        HashGrid(small_config(backend="tcnn"))
    one_sentence(str(e.value))
    assert HashGrid(small_config()).backend == ("cpp" if cpu_kernels.kernels() else "torch")
    assert HashGrid(small_config(backend="torch")).backend == "torch"
    other = HashGrid(small_config(log2_hashmap_size=7))
    with pytest.raises(RedcubeError, match="another encoding config") as e:
        HashGrid(small_config()).load_state_dict(other.state_dict())
    one_sentence(str(e.value))


needs_kernels = pytest.mark.skipif(cpu_kernels.kernels() is None, reason="the C kernels did not build here (no compiler)")


@needs_kernels
@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
@pytest.mark.parametrize("features", [1, 2, 4, 8])
def test_c_kernels_match_the_torch_path(interpolation, features):
    """Backend 'cpp' gives the torch path's features and parameter gradients, on dense and hashed levels and at the box's faces."""
    torch.manual_seed(0)
    cfg = dict(n_levels=5, n_features_per_level=features, log2_hashmap_size=10, base_resolution=3, per_level_scale=2.0,
               interpolation=interpolation)
    ref, fast = HashGrid(HashGridConfig(**cfg, backend="torch")), HashGrid(HashGridConfig(**cfg, backend="cpp"))
    assert fast.backend == "cpp" and any(lv.dense for lv in fast.levels) and not all(lv.dense for lv in fast.levels)
    with torch.no_grad():
        ref.params.normal_()
        fast.params.copy_(ref.params)
    x = torch.rand(3000, 3)
    x[:8] = torch.tensor([[0.0, 0.0, 0.0], [1 - 1e-6] * 3] * 4)
    a, b = ref(x), fast(x)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(a)
    (a * g).sum().backward()
    (b * g).sum().backward()
    torch.testing.assert_close(fast.params.grad, ref.params.grad, atol=1e-5, rtol=1e-5)


def test_kernels_that_cannot_build_fall_back_to_torch(monkeypatch, tmp_path, one_sentence):
    monkeypatch.setattr(cpu_kernels, "_STATE", {})
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    assert cpu_kernels.kernels() is None and cpu_kernels.unavailable_reason()
    assert HashGrid(small_config()).backend == "torch"
    with pytest.raises(RedcubeError, match="'cpp'") as e:
        HashGrid(small_config(backend="cpp"))
    one_sentence(str(e.value))
