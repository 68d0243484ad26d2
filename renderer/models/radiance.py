"""Instant-NGP radiance field of the cube world (Müller et al. 2022; NeRF volume rendering, Mildenhall et al. 2020).

A pixel (pose, uv) becomes a ray through `renderer.camera.rays`; the ray is cut to the scene's box
(`renderer.volume.ray_box`) and marched in equal steps dt; only steps in marked cells of the occupancy
grid are kept, packed to the front of each ray's row (`renderer.cpu_kernels.march` on the CPU, the same
in torch elsewhere), and go through hash grid -> small MLP -> density sigma (trunc_exp) and colour
(sigmoid). The scene is Lambertian (no specular term), so colour does not depend on the view direction.
Compositing (`renderer.volume.composite`):

  (1) alpha_i = 1 - exp(-sigma_i * dt)                       NeRF eq. 3, equal steps dt
  (2) T_i     = prod_{j < i} (1 - alpha_j)                   transmittance
  (3) C       = sum_i T_i alpha_i c_i + T_end * sky          the scene's sky colour behind everything

Inference on the CPU (eval mode, no gradients, the C kernels built) runs fused per ray in C
(`renderer.cpu_kernels.render_rays`): the same march, field and compositing, with no per-sample tensors and each ray
stopped as soon as it is opaque; the module path below stays for training, CUDA and the torch backend.

Training marches twice: (a) without gradients, a few steps of every ray at a time, to find where its
transmittance falls below `min_transmittance`, then (b) with gradients on the samples before that point
only. Evaluation needs the first march only. The first `warmup_forwards` training forwards instead take
stratified samples over each ray's whole path (`renderer.volume.stratified`).

The occupancy grid (Instant-NGP sec. 4, "accelerated ray marching") holds a running max of the density
per cell: every `occupancy_every` training forwards each cell's value decays by `occupancy_decay` and
is raised to the density at a random point inside it; a cell is marched when its value exceeds
min(threshold, mean), and so are its 26 neighbours. It is a buffer, so a checkpoint carries it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from renderer import cpu_kernels, volume
from renderer.camera import rays
from renderer.errors import RedcubeError
from renderer.hashgrid import HashGrid, HashGridConfig
from renderer.scene import Scene


@dataclass
class RadianceFieldConfig(HashGridConfig):
    """The hash grid's settings (`HashGridConfig`, smaller defaults), then the MLP's, the march's and the occupancy
    grid's."""

    n_levels: int = 8
    log2_hashmap_size: int = 16
    per_level_scale: float = 1.6
    """Resolution growth per level (8 levels from 16 reach ~430 cells across the box: 1 cm)."""
    fused: bool = False
    """Run the torch backend's gather and scatter through torch.compile (~30 s of compiling once per process;
    the C kernels of backend 'cpp' need none of it)."""
    width: int = 64
    """Hidden units of the MLP (Instant-NGP: 64)."""
    hidden_layers: int = 1
    """Hidden layers of the MLP (Instant-NGP's density MLP has one)."""
    steps: int = 128
    """March steps along the box diagonal: the step length is diagonal / steps."""
    margin: float = 0.1
    """Metres of empty space around the plane and the cube inside the box."""
    warmup_forwards: int = 64
    """First training forwards: `warmup_samples` stratified samples spread over each ray's whole path
    through the box, with gradients, before the occupancy grid's first update takes over (an empty
    grid cannot be trusted, and marching every step of an unknown box costs minutes on a CPU)."""
    warmup_samples: int = 24
    """Samples per ray during the warm-up."""
    density_init: float = 0.15
    """Density (1/m) of the untrained field: nearly transparent, so the warm-up's gradients reach the whole box."""
    occupancy_res: int = 64
    """Occupancy cells along the box's longest side (the other sides in proportion)."""
    occupancy_every: int = 16
    """Training forwards between occupancy-grid updates."""
    occupancy_decay: float = 0.95
    """Decay of a cell's density per update."""
    occupancy_threshold: float = 0.05
    """A cell is marched when its density makes a step at least this opaque (or exceeds the mean). Higher than
    Instant-NGP's 0.01: the early field's fog (density ~0.4/m everywhere) sits above 0.01 a step and kept 98% of
    the box marched; at 0.05 (2/m) the fog is cut while every surface is far denser."""
    min_transmittance: float = 1e-3
    """A ray stops once this little light gets through."""

    def __post_init__(self):
        super().__post_init__()  # unsupported encoding settings: one sentence
        if self.width < 1 or self.hidden_layers < 1 or self.steps < 2 or self.occupancy_res < 2 or self.occupancy_every < 1 \
                or self.warmup_forwards < 0 or self.warmup_samples < 1 or not self.density_init > 0:
            raise RedcubeError("ngp width, hidden_layers, occupancy_every, warmup_samples and density_init must be positive, "
                               "warmup_forwards >= 0, and steps, occupancy_res at least 2; fix the model config.")
        if not (0 <= self.occupancy_decay <= 1 and 0 < self.occupancy_threshold < 1 and 0 <= self.min_transmittance < 1 and self.margin >= 0):
            raise RedcubeError("ngp occupancy_decay must lie in [0, 1], occupancy_threshold and min_transmittance in (0, 1) and margin >= 0; fix the model config.")


class _TruncExp(torch.autograd.Function):
    """exp with its gradient clamped at exp(15) (Instant-NGP / torch-ngp's density activation)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    return _TruncExp.apply(x)


def scene_box(scene: Scene, margin: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The axis-aligned box holding the ground plane and the cube, plus `margin` metres: (low, high)."""
    c, h = scene.cube_center, scene.cube_size / 2
    g = scene.ground_half_size
    lo = [min(-g, c[0] - h), min(0.0, c[1] - h), min(-g, c[2] - h)]
    hi = [max(g, c[0] + h), max(0.0, c[1] + h), max(g, c[2] + h)]
    return tuple(v - margin for v in lo), tuple(v + margin for v in hi)


def ngp_mlp(in_dims: int, width: int, hidden_layers: int, out_dims: int = 4) -> nn.Sequential:
    """Instant-NGP's small MLP: `hidden_layers` x (Linear, ReLU) of `width` units, then a Linear to `out_dims` raw outputs."""
    dims = [in_dims] + [width] * hidden_layers
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, out_dims))


class RadianceField(nn.Module):
    def __init__(self, config: RadianceFieldConfig, scene: Scene):
        super().__init__()
        self.config, self.scene = config, scene
        self.encoding = HashGrid(config, fused=config.fused)
        self.mlp = ngp_mlp(self.encoding.n_output_dims, config.width, config.hidden_layers)  # sigma (raw), rgb (raw)
        with torch.no_grad():
            self.mlp[-1].bias[0] = math.log(config.density_init)
        lo, hi = scene_box(scene, config.margin)
        self.register_buffer("box_lo", torch.tensor(lo), persistent=False)
        self.register_buffer("box_size", torch.tensor(hi) - torch.tensor(lo), persistent=False)
        self.register_buffer("sky", torch.tensor(scene.sky_color, dtype=torch.float32), persistent=False)
        side = max(hi[i] - lo[i] for i in range(3))
        self.grid_shape = tuple(max(2, round(config.occupancy_res * (hi[i] - lo[i]) / side)) for i in range(3))
        self.dt = math.dist(lo, hi) / config.steps
        # Every cell starts occupied; the first update replaces these values outright.
        self.register_buffer("occupancy", torch.full((math.prod(self.grid_shape),), 1e3))
        self.register_buffer("occupancy_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("train_forwards", torch.zeros((), dtype=torch.long))
        self.fused = True
        """Render through the fused C kernel where it applies (`redcube bench` turns it off to compare)."""
        self.tight = True
        """The fused path marches only the cells over the threshold, not their neighbours too: a trained grid has seen
        every surface many times, and half the field evaluations go (shipped field: 11.1 -> 5.4 per ray on aimed
        views at 256², 47.6 dB against the module path's picture, 0.15 dB less against the ground truth)."""
        self.infer_chunk = 16384
        """Rays per forward pass at inference: the fused kernel splits them over its threads in tiles."""
        self.last_evals: float | None = None
        """Mean field evaluations per ray of the last fused render."""
        self._occupied_cache: tuple | None = None

    @property
    def backend(self) -> str:
        """The hash grid's implementation in use: 'tcnn', 'cpp' or 'torch'."""
        return self.encoding.backend

    # ---- the field -------------------------------------------------------------------------------
    def field(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised points x [M, 3] in [0, 1]^3 -> density [M] and colour [M, 3]."""
        raw = self.mlp(self.encoding(x))
        return trunc_exp(raw[:, 0]), torch.sigmoid(raw[:, 1:])

    def normalise(self, p: torch.Tensor) -> torch.Tensor:
        """World points [..., 3] -> box coordinates in [0, 1)^3."""
        return ((p - self.box_lo) / self.box_size).clamp(0.0, 1.0 - 1e-6)

    # ---- occupancy grid ----------------------------------------------------------------------------
    def _cells(self, x: torch.Tensor) -> torch.Tensor:
        """Flat occupancy-cell index of box coordinates x [..., 3]."""
        gx, gy, gz = self.grid_shape
        c = (x * torch.tensor(self.grid_shape, device=x.device, dtype=x.dtype)).long()
        return (c[..., 0] * gy + c[..., 1]) * gz + c[..., 2]

    def occupied(self, dilate: bool = True) -> torch.Tensor:
        """[cells] bool: which cells the march visits: those over the threshold and, with `dilate`, their 26
        neighbours (in training a thin surface, such as the ground plane, can fall between a cell's random probes, and
        a surface still forming must be able to grow into the next cell). Cached until the grid changes (a frame would
        otherwise pay for the pooling)."""
        key = (self.occupancy.data_ptr(), self.occupancy._version, self.occupancy.device, dilate)
        if self._occupied_cache is None or self._occupied_cache[0] != key:
            self._occupied_cache = (key, self._occupied(dilate))
        return self._occupied_cache[1]

    def _occupied(self, dilate: bool) -> torch.Tensor:
        thr = min(self.config.occupancy_threshold / self.dt, float(self.occupancy.mean()))
        over = (self.occupancy > thr).float().reshape(1, 1, *self.grid_shape)
        if dilate:
            over = torch.nn.functional.max_pool3d(over, 3, stride=1, padding=1)
        return over.reshape(-1) > 0

    @torch.no_grad()
    def update_occupancy(self, chunk: int = 1 << 16) -> None:
        """One Instant-NGP grid update: decay every cell, then raise it to the density at a random point inside."""
        shape = torch.tensor(self.grid_shape, device=self.occupancy.device)
        idx = torch.arange(len(self.occupancy), device=self.occupancy.device)
        ijk = torch.stack([idx // (shape[1] * shape[2]), (idx // shape[2]) % shape[1], idx % shape[2]], dim=1)
        x = (ijk + torch.rand(len(idx), 3, device=idx.device)) / shape
        sigma = torch.cat([self.field(x[i:i + chunk])[0] for i in range(0, len(x), chunk)])
        if int(self.occupancy_updates) == 0:
            self.occupancy.copy_(sigma)
        else:
            torch.maximum(self.occupancy * self.config.occupancy_decay, sigma, out=self.occupancy)
        self.occupancy_updates += 1

    # ---- rays ------------------------------------------------------------------------------------------
    def _span(self, o: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Where rays o + t d enter and leave the box, within the camera's near and far: t0, t1 [B] (t1 <= t0: a miss)."""
        return volume.ray_box(o, d, self.box_lo, self.box_lo + self.box_size, self.scene.near, self.scene.far)

    def _march(self, o: torch.Tensor, d: torch.Tensor, jitter: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The march steps t_k = t0 + (k + u) dt inside the box whose occupancy cell is marched, packed to the
        front of each row: t [B, K] and counts [B] (row b is valid in [0, counts[b]), K = the largest count)."""
        t0, t1 = self._span(o, d)
        u = torch.rand(len(o)) if jitter else torch.full((len(o),), 0.5)
        occupied, k = self.occupied(), self.config.steps
        if self.encoding.backend == "cpp" and o.dtype == torch.float32 and not o.is_cuda:
            t, counts = cpu_kernels.march(o, d, t0, t1, u, self.dt, self.box_lo, self.box_size, occupied, self.grid_shape, k)
        else:  # the same in torch: every step materialised, then the kept ones sorted to the front
            u = u.to(o.device)
            t = t0[:, None] + (torch.arange(k, device=o.device, dtype=o.dtype)[None, :] + u[:, None]) * self.dt
            keep = (t < t1[:, None]) & occupied[self._cells(self.normalise(o[:, None, :] + t[..., None] * d[:, None, :]))]
            t = t.gather(1, (~keep).to(torch.uint8).argsort(dim=1, stable=True))
            counts = keep.sum(1)
        width = int(counts.max()) if len(counts) else 0
        return t[:, :width], counts

    def forward(self, poses: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """poses [B, 5], uv [B, 2] -> colours [B, 3]: the volume-rendered ray through each pixel."""
        training = self.training and torch.is_grad_enabled()
        o, d = rays(poses, uv, self.scene)
        o, d = o.contiguous(), d.contiguous()
        if not training and not torch.is_grad_enabled() and self._fused_applies(o):
            return self._render_fused(o, d)
        if training:
            n, c = int(self.train_forwards), self.config
            self.train_forwards += 1
            if n < c.warmup_forwards:
                return self._warmup_render(o, d)
            if (n - c.warmup_forwards) % c.occupancy_every == 0:
                self.update_occupancy()
        t, counts = self._march(o, d, jitter=training)
        # (a) march without gradients, a few steps of every ray at a time, until its transmittance runs out
        with torch.no_grad():
            ray, col, sigma, rgb = self._march_densities(o, d, t, counts)
        if training:  # (b) again with gradients, on the samples that light reached
            sigma, rgb = self.field(self.normalise(o[ray] + t[ray, col, None] * d[ray]))
        return self._composite(sigma, rgb, ray, col, t.shape)

    def _fused_applies(self, o: torch.Tensor) -> bool:
        if not (self.fused and self.encoding.backend == "cpp" and o.dtype == torch.float32 and not o.is_cuda):
            return False
        c = self.config
        shape = cpu_kernels.field_shape(c.n_levels, c.n_features_per_level, c.interpolation == "smoothstep", self._layers())
        return cpu_kernels.render_kernel(shape) is not None

    def _layers(self) -> list[nn.Linear]:
        return [m for m in self.mlp if isinstance(m, nn.Linear)]

    def _render_fused(self, o: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """The module path's picture (march, field, compositing, early stop) fused per ray in C."""
        t0, t1 = self._span(o, d)
        enc, c = self.encoding, self.config
        layers = self._layers()
        rgb, evals = cpu_kernels.render_rays(
            o, d, t0, t1, self.dt, c.steps, self.box_lo, self.box_size, self.occupied(not self.tight), self.grid_shape, enc.params,
            enc._cpp_levels, c.n_features_per_level, c.interpolation == "smoothstep", layers,
            -math.log(max(c.min_transmittance, 1e-30)), self.sky)
        self.last_evals = float(evals.float().mean()) if len(evals) else 0.0
        return rgb

    def _warmup_render(self, o: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Stratified samples over each ray's whole path through the box (NeRF's coarse sampling), with gradients."""
        t0, t1 = self._span(o, d)
        t, dt = volume.stratified(t0, t1, self.config.warmup_samples, jitter=True)
        sigma, rgb = self.field(self.normalise(o[:, None, :] + t[..., None] * d[:, None, :]).reshape(-1, 3))
        return volume.composite(sigma.reshape(t.shape), rgb.reshape(*t.shape, 3), dt, self.sky)

    def _march_densities(self, o, d, t, counts, segment: int = 16):
        """The march steps light reaches, as (ray, column) ids [M] into t, with their density [M] and colour [M, 3]."""
        n_rays, k = t.shape
        cut = -math.log(max(self.config.min_transmittance, 1e-30))
        depth = torch.zeros(n_rays, device=t.device)  # optical depth so far, per ray
        rays_, cols, sigmas, rgbs = [], [], [], []
        for s in range(0, k, segment):
            alive = ((counts > s) & (depth < cut)).nonzero().squeeze(1)
            if len(alive) == 0:
                break
            w = min(segment, k - s)
            seg = torch.arange(s, s + w, device=t.device)[None, :] < counts[alive, None]  # [A, w]
            a, c = seg.nonzero(as_tuple=True)
            ray, col = alive[a], c + s
            sigma, rgb = self.field(self.normalise(o[ray] + t[ray, col, None] * d[ray]))
            tau = torch.zeros(len(alive), w, device=t.device).index_put_((a, c), sigma * self.dt)
            before = depth[alive, None] + torch.cumsum(tau, dim=1) - tau  # optical depth in front of each sample
            reached = before[a, c] < cut
            rays_.append(ray[reached]), cols.append(col[reached]), sigmas.append(sigma[reached]), rgbs.append(rgb[reached])
            depth[alive] += tau.sum(1)
        if not rays_:
            empty = counts.new_zeros(0)
            return empty, empty, t.new_zeros(0), t.new_zeros(0, 3)
        return torch.cat(rays_), torch.cat(cols), torch.cat(sigmas), torch.cat(rgbs)

    def _composite(self, sigma, rgb, ray, col, shape) -> torch.Tensor:
        """(1)-(3): colour [B, 3] of each ray over the sky, the samples scattered onto the [B, K] march grid
        (zero density where no sample was taken)."""
        dense_sigma = sigma.new_zeros(shape).index_put((ray, col), sigma)
        dense_rgb = rgb.new_zeros(*shape, 3).index_put((ray, col), rgb)
        return volume.composite(dense_sigma, dense_rgb, torch.full(shape, self.dt, device=sigma.device), self.sky)
