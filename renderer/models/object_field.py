"""An Instant-NGP field of one object in the cube world's cube box: the project's hash grid + a small MLP.

    x = (p - box_lo) / box_edge                   world point -> [0, 1]^3
    h = HashGrid(x)                               [N, L F] (renderer.hashgrid, tiny-cuda-nn's layout)
    (logit, c) = MLP(h)                           `ngp_mlp`: hidden_layers x (Linear, ReLU), then Linear to 4
    sigma = occupancy_density(logit) (zero below occupancy 0.5),  rgb = sigmoid(c)

The object's fields are what issue 7's weight-space model reads, so their parameters travel as one flat
vector (`flat` / `load_flat`): the hash grid's flat table first, then each Linear's weight [out, in]
(row-major) and bias, in layer order (`torch.nn.utils.parameters_to_vector` order). `layout` describes that
vector; two fields' vectors mean the same thing only when their layouts are equal.
The default config is small for speed on a CPU: 8 levels x 2 features, T = 2^12 entries per level,
resolutions 8 to ~137 across the 1 m box, and a 16 -> 32 -> 32 -> 4 MLP (~55k parameters in all).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from renderer.errors import RedcubeError
from renderer.hashgrid import HashGrid, HashGridConfig
from renderer.models.radiance import ngp_mlp
from renderer.scene import Scene
from renderer.volume import occupancy_density


@dataclass
class ObjectFieldConfig:
    grid: HashGridConfig = field(default_factory=lambda: HashGridConfig(
        n_levels=8, n_features_per_level=2, log2_hashmap_size=12, base_resolution=8, per_level_scale=1.5))
    """Hash-grid encoding over the object's box (default 8 levels x 2 features, T = 2^12, resolutions 8 x 1.5^l)."""
    width: int = 32
    """Hidden units of the MLP."""
    hidden_layers: int = 2
    """Hidden layers of the MLP."""
    sigma_max: float = 400.0
    """Density (1/m) of fully occupied space: sigma = sigma_max * max(0, 2 sigmoid(logit) - 1)."""

    def __post_init__(self):
        if isinstance(self.grid, dict):
            self.grid = HashGridConfig(**self.grid)
        if self.width < 1 or self.hidden_layers < 1 or not self.sigma_max > 0:
            raise RedcubeError("object field width, hidden_layers and sigma_max must be positive; fix the field config.")


class ObjectField(nn.Module):
    def __init__(self, config: ObjectFieldConfig, scene: Scene | None = None):
        super().__init__()
        scene = scene or Scene()
        self.config = config
        self.encoding = HashGrid(config.grid)
        self.mlp = ngp_mlp(self.encoding.n_output_dims, config.width, config.hidden_layers)
        half = scene.cube_size / 2
        self.register_buffer("box_lo", torch.tensor(scene.cube_center) - half, persistent=False)
        self.box_edge = float(scene.cube_size)

    @property
    def box(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        lo = tuple(float(v) for v in self.box_lo)
        return lo, tuple(v + self.box_edge for v in lo)

    def normalise(self, p: torch.Tensor) -> torch.Tensor:
        """World points [N, 3] -> box coordinates in [0, 1)^3."""
        return ((p - self.box_lo) / self.box_edge).clamp(0.0, 1.0 - 1e-6)

    def raw(self, p: torch.Tensor) -> torch.Tensor:
        """World points [N, 3] -> raw outputs [N, 4]: occupancy logit, then colour logits."""
        return self.mlp(self.encoding(self.normalise(p)))

    def field(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The volume renderer's field: density [N] (1/m) and colour [N, 3] at world points [N, 3]."""
        raw = self.raw(p)
        return occupancy_density(raw[:, 0], self.config.sigma_max), torch.sigmoid(raw[:, 1:])

    # ---- the flat parameter vector ------------------------------------------------------------------
    def flat(self) -> torch.Tensor:
        """All parameters as one vector [n_params]: hash table, then each Linear's weight and bias."""
        return parameters_to_vector(self.parameters()).detach()

    def load_flat(self, vector: torch.Tensor) -> "ObjectField":
        n = sum(p.numel() for p in self.parameters())
        if vector.ndim != 1 or vector.numel() != n:
            raise RedcubeError(f"a flat parameter vector of shape {list(vector.shape)} does not fit this field layout of {n} "
                               "parameters; load it into a field built with the layout it was written with.")
        with torch.no_grad():
            vector_to_parameters(vector.to(self.encoding.params.dtype), self.parameters())
        return self

    def layout(self) -> dict:
        """What the flat vector holds, as plain JSON: the hash grid's settings and levels, then the MLP's shapes."""
        return field_layout(self.config)


def field_layout(config: ObjectFieldConfig) -> dict:
    """The flat-vector layout of fields built with `config` (the backend is left out: it does not change the layout)."""
    grid = HashGrid(config.grid)
    linears = [m for m in ngp_mlp(grid.n_output_dims, config.width, config.hidden_layers) if isinstance(m, nn.Linear)]
    grid_settings = {k: v for k, v in asdict(config.grid).items() if k != "backend"}
    return {
        "hash_grid": grid_settings,
        "levels": [{"resolution": lv.resolution, "size": lv.size, "offset": lv.offset} for lv in grid.levels],
        "hash_params": grid.n_params,
        "mlp": [[m.out_features, m.in_features] for m in linears],
        "activation": "relu",
        "n_params": grid.n_params + sum(o * i + o for o, i in ([m.out_features, m.in_features] for m in linears)),
    }
