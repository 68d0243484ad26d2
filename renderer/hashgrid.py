"""Multiresolution hash encoding (Instant-NGP, Müller et al. 2022, sec. 3) with tiny-cuda-nn's semantics
and parameter layout, so one flat parameter vector moves between the two backends.

Per level l (tiny-cuda-nn `grid.h`):
  scale_l      = base_resolution * per_level_scale**l - 1
  resolution_l = ceil(scale_l) + 1
  size_l       = min(next_multiple_of_8(resolution_l**3), 2**log2_hashmap_size)   (entries in the level)
  pos          = x * scale_l + 0.5;  corner = floor(pos);  frac = pos - corner
A corner's index is dense (c0 + c1 * R + c2 * R**2) when resolution_l**3 fits the level, else the
coherent prime hash (c0 * 1) ^ (c1 * 2654435761) ^ (c2 * 805459861) in uint32 arithmetic; either way
modulo size_l. Parameters: one flat vector, level after level, `size_l * F` floats each (entry-major:
entry i's F features are contiguous), initialised uniformly in +-1e-4. Output [N, L * F], level-major.
Input x lies in [0, 1]^3.

Backends: `tcnn` (tinycudann, CUDA tensors only), `cpp` (C/OpenMP loops for CPU tensors, built once:
`renderer.cpu_kernels`; 10-30x the torch path's points/s here) and `torch` (pure PyTorch, CPU and CUDA). The torch
path is a custom autograd Function: forward computes the 8 corners' indices and weights for all levels
and gathers from the flat table; backward recomputes them chunk by chunk (cheaper than keeping them on
a memory-bound CPU) and scatters the weighted output gradient with one `index_add_` on the flat vector.
With `fused=True` both index computations run through torch.compile, which fuses index, weight,
gather and sum into one loop (3-4x faster forward on the CPU, measured in `redcube bench --only hashgrid`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from renderer.errors import RedcubeError
from renderer import cpu_kernels

PRIMES = (1, 2654435761, 805459861)
"""tiny-cuda-nn's coherent prime hash factors for 3-D positions."""
INTERPOLATIONS = ("linear", "smoothstep")
BACKENDS = ("auto", "torch", "cpp", "tcnn")
FEATURES_PER_LEVEL = (1, 2, 4, 8)
INIT_SCALE = 1e-4


@dataclass
class HashGridConfig:
    n_levels: int = 16
    """Resolution levels L."""
    n_features_per_level: int = 2
    """Features F per table entry: 1, 2, 4 or 8 (tiny-cuda-nn's choices)."""
    log2_hashmap_size: int = 19
    """log2 of the most entries a level holds (T)."""
    base_resolution: int = 16
    """Coarsest grid resolution N_min."""
    per_level_scale: float = 2.0
    """Growth factor b of the resolution from one level to the next."""
    interpolation: str = "linear"
    """'linear' (trilinear) or 'smoothstep' (weights through 3t^2 - 2t^3: continuous gradients)."""
    backend: str = "auto"
    """'auto' (tinycudann on CUDA tensors when it imports, the C++ kernels on the CPU when they build, else torch),
    'torch' (pure PyTorch), 'cpp' (renderer.cpu_kernels) or 'tcnn'."""

    def __post_init__(self):
        if self.n_features_per_level not in FEATURES_PER_LEVEL:
            raise RedcubeError(f"hash grid n_features_per_level {self.n_features_per_level!r} is unsupported; choose one of {list(FEATURES_PER_LEVEL)}.")
        if self.interpolation not in INTERPOLATIONS:
            raise RedcubeError(f"hash grid interpolation {self.interpolation!r} is unknown; choose one of {list(INTERPOLATIONS)}.")
        if self.backend not in BACKENDS:
            raise RedcubeError(f"hash grid backend {self.backend!r} is unknown; choose one of {list(BACKENDS)}.")
        if not (isinstance(self.n_levels, int) and 1 <= self.n_levels <= 32):
            raise RedcubeError(f"hash grid n_levels {self.n_levels!r} is out of range; choose a whole number from 1 to 32.")
        if not (isinstance(self.log2_hashmap_size, int) and 4 <= self.log2_hashmap_size <= 24):
            raise RedcubeError(f"hash grid log2_hashmap_size {self.log2_hashmap_size!r} is out of range; choose a whole number from 4 to 24.")
        if not (isinstance(self.base_resolution, int) and self.base_resolution >= 2):
            raise RedcubeError(f"hash grid base_resolution {self.base_resolution!r} is invalid; choose a whole number of at least 2.")
        if not (isinstance(self.per_level_scale, (int, float)) and 1.0 <= self.per_level_scale <= 4.0):
            raise RedcubeError(f"hash grid per_level_scale {self.per_level_scale!r} is out of range; choose a number from 1 to 4.")
        top = self.base_resolution * self.per_level_scale ** (self.n_levels - 1)
        if top > 2 ** 20:
            raise RedcubeError(f"hash grid's finest resolution {top:.3g} is too large; lower n_levels or per_level_scale.")

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level


@dataclass(frozen=True)
class Level:
    """One level's geometry, as tiny-cuda-nn lays it out."""

    scale: float
    resolution: int
    size: int
    """Entries in this level's table."""
    offset: int
    """Index of the level's first entry in the whole table."""

    @property
    def dense(self) -> bool:
        return self.resolution ** 3 <= self.size


def grid_levels(config: HashGridConfig) -> list[Level]:
    """Per-level scale, resolution, table size and offset, rounded exactly as tiny-cuda-nn rounds them."""
    levels, offset = [], 0
    log2_scale = math.log2(config.per_level_scale)
    for lvl in range(config.n_levels):
        scale = 2.0 ** (lvl * log2_scale) * config.base_resolution - 1.0
        scale = float(torch.tensor(scale, dtype=torch.float32))  # tiny-cuda-nn computes it in float32
        resolution = math.ceil(scale) + 1
        size = min(resolution ** 3, 2 ** 31 - 1)
        size = -(-size // 8) * 8  # aligned accesses: next multiple of 8
        size = min(size, 2 ** config.log2_hashmap_size)
        levels.append(Level(scale, resolution, size, offset))
        offset += size
    return levels


def tcnn_available() -> bool:
    """Whether tinycudann imports (it raises OSError rather than ImportError where CUDA is missing)."""
    try:
        import tinycudann  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def corner_indices(config: HashGridConfig, levels: list[Level], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Table rows [N, L, 8] (into the whole flat table) of the 8 corners around x [N, 3] on every level,
    and the fractional positions [N, L, 3] inside each cell. Corner k has offset bit d = (k >> d) & 1
    along dimension d, as tiny-cuda-nn enumerates them."""
    n = x.shape[0]
    scales = torch.tensor([lv.scale for lv in levels], dtype=x.dtype, device=x.device)
    pos = x[:, None, :] * scales[None, :, None] + 0.5  # [N, L, 3]
    base = torch.floor(pos)
    frac = pos - base
    base = base.long()
    rows = []
    n_dense = sum(lv.dense for lv in levels)  # the coarsest levels: resolution grows with the level, the size does not
    for part, is_dense in ((slice(0, n_dense), True), (slice(n_dense, None), False)):
        lv = levels[part]
        if not lv:
            continue
        g = base[:, part]
        c = torch.stack([g, g + 1], dim=-1)  # [N, Lg, 3, 2]: coordinate of corner bit 0 / 1 per dimension
        size = torch.tensor([v.size for v in lv], device=x.device)
        if is_dense:
            res = torch.tensor([v.resolution for v in lv], device=x.device)
            t0, t1, t2 = c[:, :, 0], c[:, :, 1] * res[:, None], c[:, :, 2] * (res * res)[:, None]
            idx = t0[..., None, None, :] + t1[..., None, :, None] + t2[..., :, None, None]  # [N, Lg, 2, 2, 2] (z, y, x)
            idx = torch.where(idx >= size[:, None, None, None], idx - size[:, None, None, None], idx)  # % size (idx < 2 size)
        else:
            # uint32 products, XOR, modulo a power-of-two size: only the low log2(size) bits matter, and int64
            # products keep them exact, so no explicit 32-bit wrap is needed.
            t0, t1, t2 = c[:, :, 0] * PRIMES[0], c[:, :, 1] * PRIMES[1], c[:, :, 2] * PRIMES[2]
            idx = (t0[..., None, None, :] ^ t1[..., None, :, None] ^ t2[..., :, None, None]) & (size[:, None, None, None] - 1)
        rows.append(idx.reshape(n, len(lv), 8))
    idx = rows[0] if len(rows) == 1 else torch.cat(rows, dim=1)
    offsets = torch.tensor([lv.offset for lv in levels], device=x.device)
    return idx + offsets[None, :, None], frac


def corner_weights(frac: torch.Tensor, interpolation: str) -> torch.Tensor:
    """Interpolation weights [N, L, 8] of the 8 corners from fractional positions [N, L, 3]."""
    if interpolation == "smoothstep":
        frac = frac * frac * (3.0 - 2.0 * frac)
    w = torch.stack([1.0 - frac, frac], dim=-1)  # [N, L, 3, 2]
    return (w[:, :, 0, None, None, :] * w[:, :, 1, None, :, None] * w[:, :, 2, :, None, None]).reshape(*frac.shape[:2], 8)


def encode(x: torch.Tensor, table: torch.Tensor, config: HashGridConfig, levels: list[Level]) -> torch.Tensor:
    """Features [N, L * F] of x [N, 3]: the weighted sum of the 8 corners' rows of table [rows, F], per level."""
    idx, frac = corner_indices(config, levels, x)
    w = corner_weights(frac, config.interpolation).to(table.dtype)
    return (table[idx] * w[..., None]).sum(2).reshape(x.shape[0], -1)


def scatter_terms(x: torch.Tensor, grad_out: torch.Tensor, config: HashGridConfig, levels: list[Level]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat parameter positions [N * L * 8 * F] and the values to add there for output gradient grad_out [N, L * F]."""
    f = config.n_features_per_level
    idx, frac = corner_indices(config, levels, x)
    w = corner_weights(frac, config.interpolation).to(grad_out.dtype)
    rows = w[..., None] * grad_out.reshape(x.shape[0], -1, 1, f)  # [N, L, 8, F]
    pos = idx[..., None] * f + torch.arange(f, device=x.device)
    return pos.reshape(-1), rows.reshape(-1)


def input_grad(x: torch.Tensor, table: torch.Tensor, grad_out: torch.Tensor, config: HashGridConfig, levels: list[Level]) -> torch.Tensor:
    """dL/dx [N, 3]: through the interpolation weights (corner indices are piecewise constant)."""
    n, f = x.shape[0], config.n_features_per_level
    idx, frac = corner_indices(config, levels, x)
    dot = (table[idx] * grad_out.reshape(n, -1, 1, f)).sum(-1)  # dL/dw per corner [N, L, 8]
    if config.interpolation == "smoothstep":
        s, ds = frac * frac * (3.0 - 2.0 * frac), 6.0 * frac * (1.0 - frac)
    else:
        s, ds = frac, torch.ones_like(frac)
    a = torch.stack([1.0 - s, s], dim=-1)  # per-dimension factor of corner bit 0 / 1 [N, L, 3, 2]
    da = torch.stack([-ds, ds], dim=-1)
    dot = dot.reshape(n, -1, 2, 2, 2)  # (z, y, x) bits
    gx = (dot * da[:, :, 0, None, None, :] * a[:, :, 1, None, :, None] * a[:, :, 2, :, None, None]).sum((2, 3, 4))
    gy = (dot * a[:, :, 0, None, None, :] * da[:, :, 1, None, :, None] * a[:, :, 2, :, None, None]).sum((2, 3, 4))
    gz = (dot * a[:, :, 0, None, None, :] * a[:, :, 1, None, :, None] * da[:, :, 2, :, None, None]).sum((2, 3, 4))
    scales = torch.tensor([lv.scale for lv in levels], dtype=x.dtype, device=x.device)
    return (torch.stack([gx, gy, gz], dim=-1) * scales[None, :, None]).sum(1)


@functools.cache
def _compiled(fn):
    """torch.compile of `encode` / `scatter_terms`, made once per process (grids of equal config share it)."""
    return torch.compile(fn, dynamic=True)


class _HashGridFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, params, grid):
        ctx.save_for_backward(x, params)
        ctx.grid = grid
        with torch.no_grad():
            return grid._encode(x, params.view(-1, grid.config.n_features_per_level))

    @staticmethod
    def backward(ctx, grad_out):
        x, params = ctx.saved_tensors
        grid = ctx.grid
        grad_out = grad_out.contiguous()
        grad_x = grad_params = None
        if ctx.needs_input_grad[1] and grid.backend == "cpp":
            grad_params = torch.zeros_like(params)
            cpu_kernels.encode_backward(x, grad_out, grad_params, grid._cpp_levels, grid.config.n_features_per_level,
                                         grid.config.interpolation == "smoothstep")
        elif ctx.needs_input_grad[1]:
            grad_params = torch.zeros_like(params)
            for i in range(0, x.shape[0], grid.chunk):  # chunks keep the [n, L, 8, F] terms in cache
                pos, vals = grid._scatter(x[i:i + grid.chunk], grad_out[i:i + grid.chunk])
                grad_params.index_add_(0, pos, vals)
        if ctx.needs_input_grad[0]:
            grad_x = input_grad(x, params.view(-1, grid.config.n_features_per_level), grad_out, grid.config, grid.levels)
        return grad_x, grad_params, None


class HashGrid(nn.Module):
    """x [N, 3] in [0, 1]^3 -> features [N, L * F] (level-major)."""

    chunk = 8192
    """Points per backward chunk."""

    def __init__(self, config: HashGridConfig, fused: bool = False):
        super().__init__()
        self.config, self.fused = config, fused
        self.levels = grid_levels(config)
        self.n_params = sum(lv.size for lv in self.levels) * config.n_features_per_level
        self.params = nn.Parameter(torch.empty(self.n_params).uniform_(-INIT_SCALE, INIT_SCALE))
        if config.backend == "tcnn" and not tcnn_available():
            raise RedcubeError("hash grid backend 'tcnn' was asked for but tinycudann does not import here; "
                               "install tiny-cuda-nn's PyTorch bindings on a CUDA machine or use backend 'torch'.")
        self.tcnn_importable = config.backend not in ("torch", "cpp") and tcnn_available()
        self._tcnn = None
        self._cpp_levels = cpu_kernels.level_table(self.levels)
        if config.backend == "cpp" and cpu_kernels.kernels() is None:
            raise RedcubeError(f"hash grid backend 'cpp' was asked for but its C kernels did not build ({cpu_kernels.unavailable_reason()}); "
                               "install g++ or use backend 'torch'.")

    @property
    def backend(self) -> str:
        """The implementation forward uses on the module's current device: 'tcnn', 'cpp' or 'torch'."""
        if self.params.is_cuda:
            return "tcnn" if self.tcnn_importable else "torch"
        cpp_allowed = self.config.backend in ("auto", "cpp") and self.params.dtype == torch.float32
        return "cpp" if cpp_allowed and cpu_kernels.kernels() is not None else "torch"

    @property
    def n_output_dims(self) -> int:
        return self.config.n_output_dims

    def table(self) -> torch.Tensor:
        """The flat parameters viewed as the whole table [sum of level sizes, F]."""
        return self.params.view(-1, self.config.n_features_per_level)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        p = state_dict.get(prefix + "params")
        if p is not None and p.shape != self.params.shape:
            raise RedcubeError(
                f"the hash grid's flat parameter vector holds {p.numel()} values but this encoding layout needs {self.n_params}; "
                "the checkpoint comes from another encoding config: load it with the config it was trained with.")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backend == "tcnn":
            return self._forward_tcnn(x)
        x = x.to(self.params.dtype)
        if not (torch.is_grad_enabled() and (self.params.requires_grad or x.requires_grad)):
            return self._encode(x, self.table())
        return _HashGridFunction.apply(x, self.params, self)

    # ---- the torch backend's two kernels, compiled when fused ----------------------------------
    def _encode(self, x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return x.new_zeros(0, self.n_output_dims)
        if self.backend == "cpp":
            return cpu_kernels.encode_forward(x, table, self._cpp_levels, self.config.n_features_per_level,
                                               self.config.interpolation == "smoothstep")
        return (_compiled(encode) if self.fused else encode)(x, table.detach(), self.config, self.levels)

    def _scatter(self, x: torch.Tensor, grad_out: torch.Tensor):
        return (_compiled(scatter_terms) if self.fused else scatter_terms)(x, grad_out, self.config, self.levels)

    def _forward_tcnn(self, x: torch.Tensor) -> torch.Tensor:
        import tinycudann as tcnn

        c = self.config
        if self._tcnn is None:
            enc = tcnn.Encoding(3, {
                "otype": "HashGrid", "n_levels": c.n_levels, "n_features_per_level": c.n_features_per_level,
                "log2_hashmap_size": c.log2_hashmap_size, "base_resolution": c.base_resolution,
                "per_level_scale": c.per_level_scale, "interpolation": c.interpolation.capitalize(),
            }, dtype=torch.float32)
            if enc.params.numel() != self.n_params:
                raise RedcubeError(f"tinycudann lays this hash grid out in {enc.params.numel()} parameters, not {self.n_params}; use backend 'torch'.")
            self._tcnn = [enc]  # a list, not a registered submodule: state_dict keeps only `params`
        enc = self._tcnn[0]
        enc.params = self.params  # tcnn's module reads its `params`; ours are the one copy
        return enc(x.contiguous()).float()
