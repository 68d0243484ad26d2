"""Meta-learning an mNIF over the cube-world family: paper Algorithm 1 (CAVIA context adaptation) with Meta-SGD rates.

Only the latent phi adapts per world (CAVIA: the context is the only task-specific part); the bases and T are
shared and learned in the outer loop. Following the paper (sec. 4.1), each episode starts a world's latent from
random noise, not from CAVIA's constant zero context. The inner learning rate of Algorithm 1 line 7 is replaced
by Meta-SGD's learned per-dimension rates alpha [H], learned with the bases and T. They start at 0.1, the smallest
rate of the paper's grid eps_inner in {10, 1, 0.1} (appendix A.2.1): its image optimum, 1.0, overshoots on this
loss (train-mnif --worlds 64, 2.5 min: post-adaptation occupancy BCE stalled at 0.66, chance is 0.69; 0.42 from 0.1).

One outer step, numbered as Algorithm 1:
  3.   draw a batch of training worlds j; support points (the inner loop's) and fresh query points (the outer loss's)
  5.   phi_j^(0) ~ N(0, sigma^2 I)                                                  [B, H]
  6-7. K times: phi_j^(n+1) = phi_j^(n) - alpha ⊙ ∇phi L_support(phi_j^(n))       [B, H]
       (first order: the gradient is a constant of the outer step; second order keeps its graph, create_graph)
  9.   outer loss L_query(phi_j^(K)); one Adam step on the bases, T and alpha.
The losses are `training.mnif.point_loss` (occupancy BCE + colour MSE on analytic targets); meta-learning adds no
latent weight decay (the paper uses it with auto-decoding only).

After training, the latents of the training worlds (what the diffusion model learns) are the inner loop's result per
world, and an unseen world is fitted by the same K-step inner loop with the learned rates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from renderer.errors import RedcubeError
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.scene import Scene
from renderer.worlds import Cubes, world_scene
from training.checkpoint import load_checkpoint
from training.engine import Engine
from training.mnif.autodecode import (LatentFit, MNIFTrainConfig, MNIFTrainer, mnif_parts, point_loss, sample_points,
                                      select)

METHOD = "meta"


@dataclass
class MetaConfig:
    inner_steps: int = 3
    """K (N_inner): inner-loop steps per world (paper sec. 5.3.4 uses 3)."""
    second_order: bool = False
    """Backpropagate through the inner loop's gradients (create_graph); first order by default."""
    rate_init: float = 0.1
    """Starting value of every Meta-SGD per-dimension rate (in the paper's eps_inner grid {10, 1, 0.1}, appendix A.2.1)."""
    rate_lr: float = 1e-2
    """Adam learning rate of the rates (constant)."""
    context_std: float = 0.01
    """sigma of the random initial context phi^(0) ~ N(0, sigma^2 I) (Algorithm 1 line 5; 0 gives CAVIA's zero context)."""

    def __post_init__(self):
        if not isinstance(self.inner_steps, int) or self.inner_steps < 1:
            raise RedcubeError(f"meta-learning needs at least one inner step, not {self.inner_steps}; pass --inner-steps 1 or more.")
        if not self.rate_init > 0 or not self.rate_lr > 0 or not self.context_std >= 0:
            raise RedcubeError("meta-learning needs a positive rate_init and rate_lr and a non-negative context_std; "
                               "fix the meta config.")


def initial_context(n: int, dim: int, std: float, gen: torch.Generator) -> torch.Tensor:
    """5. phi^(0) [n, H] ~ N(0, std^2 I), a leaf that the inner loop differentiates against."""
    return (torch.randn(n, dim, generator=gen) * std).requires_grad_(True)


def adapt(model: MNIF, rates: torch.Tensor, batch: dict, phi: torch.Tensor, steps: int, rgb_weight: float,
          second_order: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """6-7. The inner loop on the support `batch` of B worlds from phi^(0) [B, H]: (phi^(K) [B, H], loss at phi^(0))."""
    first = None
    for _ in range(steps):
        loss, _ = point_loss(model, phi, batch, rgb_weight)
        first = loss if first is None else first
        # point_loss averages over the B worlds; times B, world j's gradient is that of its own loss alone
        (grad,) = torch.autograd.grad(loss * len(phi), phi, create_graph=second_order)  # [B, H]
        phi = phi - rates * grad  # Meta-SGD: alpha ⊙ grad in place of eps_latent * grad
    return phi, first


def meta_loss(model: MNIF, rates: torch.Tensor, base: Scene, cubes: Cubes, config: MNIFTrainConfig, meta: MetaConfig,
              gen: torch.Generator) -> tuple[torch.Tensor, dict]:
    """One outer step's loss (3-9) on the worlds `cubes`: the post-adaptation query loss and its parts (the engine
    takes the Adam step on the bases, T and alpha)."""
    support = sample_points(base, cubes, config.points, gen)  # 3.
    query = sample_points(base, cubes, config.points, gen)
    phi0 = initial_context(len(cubes.size), model.config.latent_dim, meta.context_std, gen)  # 5.
    phi, before = adapt(model, rates, support, phi0, meta.inner_steps, config.rgb_weight, meta.second_order)  # 6-7.
    loss, parts = point_loss(model, phi, query, config.rgb_weight)  # 9.
    return loss, {**parts, "loss_before_adapt": float(before.detach())}


def fit_meta(model: MNIF, rates: torch.Tensor, scenes: list[Scene], base: Scene, meta: MetaConfig, points: int,
             rgb_weight: float, seed: int, chunk: int = 16) -> torch.Tensor:
    """Latents [len(scenes), H]: the K-step inner loop with the learned rates, `chunk` worlds at a time (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.enable_grad():
        for i in range(0, len(scenes), chunk):
            cubes = Cubes.of(scenes[i:i + chunk])
            phi0 = initial_context(len(cubes.size), model.config.latent_dim, meta.context_std, gen)
            phi, _ = adapt(model, rates.detach(), sample_points(base, cubes, points, gen), phi0, meta.inner_steps, rgb_weight)
            out.append(phi.detach())
    return torch.cat(out)


def meta_fit(rates: torch.Tensor, meta: MetaConfig, points: int, rgb_weight: float) -> LatentFit:
    """The evaluation's fit for unseen worlds: the inner loop, as trained."""
    fn = lambda model, scenes, base, seed: fit_meta(model, rates, scenes, base, meta, points, rgb_weight, seed)
    info = {"method": "meta-learned inner loop (Meta-SGD rates)", "steps": meta.inner_steps, "points": points,
            "init": f"N(0, {meta.context_std}^2)", "rates_mean": float(rates.mean()), "rates_min": float(rates.min()),
            "rates_max": float(rates.max())}
    return LatentFit(fn, info)


class MetaTrainer(MNIFTrainer):
    """Meta-learn the bases, T and the rates (Algorithm 1); the training worlds' latents are the inner loop's result."""

    kind, method = "mnif-meta", METHOD

    def __init__(self, config: MNIFTrainConfig, meta: MetaConfig, model_config: MNIFConfig, base: Scene | None = None,
                 hooks=None, resume: bool = False, overwrite: bool = False):
        if config.init_from:
            raise RedcubeError("--init-from continues an auto-decoded mNIF; drop it or use --method autodecode.")
        self.meta, self._latents = meta, (-1, None)
        super().__init__(config, model_config, base, hooks, resume, overwrite)

    def own_groups(self) -> list[dict]:
        self.rates = torch.nn.Parameter(torch.full((self.model_config.latent_dim,), self.meta.rate_init))  # alpha [H]
        return [{"params": [self.rates], "lr": self.meta.rate_lr}]

    def restore(self, ckpt) -> None:
        Engine.restore(self, ckpt)
        with torch.no_grad():
            self.rates.copy_(ckpt.tensors[f"{METHOD}.rates"])

    def train_step(self) -> tuple[torch.Tensor, dict]:
        idx = torch.randperm(len(self.params), generator=self.gen)[:self.config.batch_worlds]
        return meta_loss(self.model, self.rates, self.scene, select(self.cubes, idx), self.config, self.meta, self.gen)

    def train_latents(self) -> torch.Tensor:
        """The inner loop's latents of every training world (seeded: the same at every save of one step)."""
        if self._latents[0] != self.step:
            c = self.config
            scenes = [world_scene(p, self.scene) for p in self.params]
            self._latents = (self.step, fit_meta(self.model, self.rates.detach(), scenes, self.scene, self.meta, c.points,
                                                 c.rgb_weight, c.seed + 2, c.batch_worlds))
        return self._latents[1]

    def live_tensors(self) -> dict[str, torch.Tensor]:
        return {}  # its latents are an inner loop over every world: too slow to hand over every half second

    def latent_fit(self) -> LatentFit:
        return meta_fit(self.rates.detach(), self.meta, self.config.points, self.config.rgb_weight)

    def saved_extra(self) -> tuple[dict, dict]:
        return mnif_parts(self.train_latents(), METHOD, asdict(self.meta), {"rates": self.rates.detach()})


def checkpoint_fit(path) -> LatentFit | None:
    """The fit a checkpoint was trained for: the meta inner loop for a meta-learned mNIF, None (Adam) otherwise."""
    ckpt = load_checkpoint(path)
    if ckpt.record.get("method", "autodecode") != METHOD:
        return None
    if f"{METHOD}.rates" not in ckpt.tensors or METHOD not in ckpt.record:
        raise RedcubeError(f"{path} says it was meta-learned but holds no meta rates or settings; the file is damaged: retrain it.")
    train = ckpt.record["train"]
    return meta_fit(ckpt.tensors[f"{METHOD}.rates"], MetaConfig(**ckpt.record[METHOD]), train["points"], train["rgb_weight"])
