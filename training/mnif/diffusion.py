"""DDPM over an mNIF's latents (seed 003, sec. 4.2 and A.3; Ho et al. 2020), sampled with DDIM (Song et al. 2021).

Latents are normalised per dimension (mean and std of the training latents, stored with the model). The
denoiser is Functa's residual MLP: input projection, `blocks` pre-norm residual blocks (LayerNorm -> Linear
-> SiLU -> Linear) conditioned on a sinusoidal timestep embedding, output projection; it predicts the noise.

  training (diffusers DDPMScheduler, T = 1000 steps):
    1. z0 = (phi - mean) / std;  t ~ U{0..T-1};  eps ~ N(0, I)
    2. z_t = scheduler.add_noise(z0, eps, t)            = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps
    3. loss = |eps - denoiser(z_t, t)|^2
  sampling (diffusers DDIMScheduler, eta = 0, `steps` of the T; predicted z0 clipped to +-4 normalised std):
    z ~ N(0, I); for t in scheduler.timesteps: z = scheduler.step(denoiser(z, t), t, z).prev_sample
    phi = z * std + mean

A checkpoint records the mNIF it belongs to (latent size and a hash of its training latents): sampling
with another mNIF is refused in one sentence.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from renderer.errors import RedcubeError
from renderer.scene import Scene
from training.checkpoint import Checkpoint, load, save_checkpoint
from training.engine import Engine, Hooks, Plan

FORMAT = "redcube-latent-ddpm"


@dataclass
class DenoiserConfig:
    latent_dim: int = 64
    """Dimension of the latents (the mNIF's H)."""
    width: int = 512
    """Channels of the residual MLP (paper: 4096; the family is small)."""
    blocks: int = 4
    """Residual blocks (paper: 4)."""
    time_dim: int = 128
    """Size of the sinusoidal timestep embedding."""
    train_timesteps: int = 1000
    """Diffusion steps T (paper: 1000)."""


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [B, dim] of integer timesteps t [B] (Transformer / DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], -1)


class _Block(nn.Module):
    def __init__(self, width: int, time_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.time = nn.Linear(time_dim, width)
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        x = self.fc1(self.norm(h) + self.time(temb))
        return h + self.fc2(torch.nn.functional.silu(x))


class Denoiser(nn.Module):
    """Residual MLP epsilon-predictor: (z_t [B, H], t [B]) -> eps [B, H]."""

    kind = "latent-ddpm"

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        self.time_mlp = nn.Sequential(nn.Linear(config.time_dim, config.time_dim), nn.SiLU())
        self.inp = nn.Linear(config.latent_dim, config.width)
        self.blocks = nn.ModuleList(_Block(config.width, config.time_dim) for _ in range(config.blocks))
        self.out = nn.Sequential(nn.LayerNorm(config.width), nn.Linear(config.width, config.latent_dim))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.config.time_dim))
        h = self.inp(z)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(h)


def latents_hash(latents: torch.Tensor) -> str:
    """Fingerprint of an mNIF's training latents: ties a diffusion checkpoint to the mNIF it was trained on."""
    return hashlib.sha256(latents.detach().float().contiguous().numpy().tobytes()).hexdigest()[:16]


class LatentDiffusion:
    """A denoiser, the latents' normalisation and the schedulers (which hold no weights)."""

    def __init__(self, config: DenoiserConfig, mean: torch.Tensor, std: torch.Tensor, mnif_hash: str = ""):
        from diffusers import DDIMScheduler, DDPMScheduler

        self.config, self.mean, self.std, self.mnif_hash = config, mean, std, mnif_hash
        self.model = Denoiser(config)
        self.train_scheduler = DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule="linear")
        self.sample_scheduler = DDIMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule="linear",
                                              clip_sample=True, clip_sample_range=4.0, set_alpha_to_one=True)

    @classmethod
    def for_latents(cls, latents: torch.Tensor, config: DenoiserConfig | None = None) -> "LatentDiffusion":
        config = config or DenoiserConfig(latent_dim=latents.shape[1])
        return cls(config, latents.mean(0), latents.std(0).clamp_min(1e-6), latents_hash(latents))

    def loss(self, phi: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training steps 1-3 on a batch of latents [B, H]."""
        z0 = (phi - self.mean) / self.std
        t = torch.randint(0, self.config.train_timesteps, (len(z0),), generator=generator)
        eps = torch.randn(z0.shape, generator=generator)
        zt = self.train_scheduler.add_noise(z0, eps, t)
        return torch.mean((eps - self.model(zt, t)) ** 2)

    @torch.no_grad()
    def sample(self, n: int, steps: int = 50, seed: int = 0) -> torch.Tensor:
        """n latents [n, H] by DDIM with `steps` denoising steps (eta = 0), seeded."""
        if not (isinstance(steps, int) and 1 <= steps <= self.config.train_timesteps):
            raise RedcubeError(f"{steps!r} sampling steps is invalid; choose a whole number from 1 to {self.config.train_timesteps}.")
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.config.latent_dim, generator=gen)
        self.sample_scheduler.set_timesteps(steps)
        self.model.eval()
        for t in self.sample_scheduler.timesteps:
            eps = self.model(z, t.expand(n))
            z = self.sample_scheduler.step(eps, t, z).prev_sample
        return z * self.std + self.mean

    def check_mnif(self, latents: torch.Tensor) -> None:
        """Refuse an mNIF whose training latents this diffusion model was not trained on (one sentence)."""
        if latents.shape[1] != self.config.latent_dim or latents_hash(latents) != self.mnif_hash:
            raise RedcubeError("this diffusion checkpoint was trained on another mNIF's latents (latent size or fingerprint differs); "
                               "pass the diffusion checkpoint written for this mNIF, or retrain it with redcube train-mnif --diffusion-only.")

    def save(self, path: str | Path, metrics: dict | None = None) -> Path:
        tensors, record = self.parts()
        return save_checkpoint(path, self.model, Scene(), metrics=metrics, extra_tensors=tensors, extra=record)

    def parts(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What a checkpoint holds beyond the denoiser: the latents' normalisation, and which mNIF it belongs to."""
        return {"latent_mean": self.mean, "latent_std": self.std}, {"mnif_latents_hash": self.mnif_hash, "role": FORMAT}

    @classmethod
    def load(cls, path: str | Path) -> "LatentDiffusion":
        return load(path, Denoiser.kind)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "LatentDiffusion":
        """The latent DDPM's loader (training.checkpoint.LOADERS)."""
        ld = cls(DenoiserConfig(**ckpt.record["model"]["config"]), ckpt.tensors["latent_mean"], ckpt.tensors["latent_std"],
                 ckpt.record.get("mnif_latents_hash", ""))
        ld.model.load_state_dict(ckpt.prefixed("model."))
        ld.model.eval()
        return ld


@dataclass
class DiffusionTrainConfig:
    mnif: str = "runs/mnif"
    """The mNIF run directory: its training latents are learnt, and diffusion.safetensors is written beside them."""
    steps: int = 3000
    """Denoiser training steps (3000 trained the shipped assets/mnif/diffusion.safetensors)."""
    batch: int = 64
    """Latents per step."""
    lr: float = 1e-3
    """Peak Adam learning rate (cosine to zero, no warm-up, as the paper)."""
    seed: int = 0
    """Seeds the denoiser's weights, the batches, timesteps and noise."""


class DiffusionTrainer(Engine):
    """The diffusion kind: the denoiser learns an mNIF's training latents; its checkpoint lies beside the mNIF's."""

    kind = "diffusion"
    checkpoint_name = "diffusion.safetensors"
    joins_run = True  # it writes into the mNIF's run directory

    def __init__(self, latents: torch.Tensor, config: DiffusionTrainConfig | None = None, denoiser: DenoiserConfig | None = None,
                 out_dir: str | None = None, hooks: Hooks | None = None, resume: bool = False):
        self.latents, self.config, self.denoiser = latents, config or DiffusionTrainConfig(), denoiser
        self.scene, self.losses = Scene(), []
        plan = Plan.of(self.config, out_dir=out_dir, lr_floor=0.0, log_every=100, eval_every=None)
        super().__init__(plan, hooks, resume)

    def setup(self, ckpt) -> None:
        self.ld = LatentDiffusion.for_latents(self.latents, self.denoiser)
        self.model = self.ld.model.train()
        lr = self.config.lr
        self.optimizer = torch.optim.Adam([{"params": self.model.parameters(), "lr": lr, "peak": lr}], lr=lr)
        self.started = time.time()

    def resume_checkpoint(self):
        ckpt = super().resume_checkpoint()
        LatentDiffusion.load(self.ckpt_path).check_mnif(self.latents)  # one sentence if it belongs to another mNIF
        return ckpt

    def train_step(self) -> tuple[torch.Tensor, dict]:
        """Training steps 1-3 on a batch of the latents."""
        idx = torch.randint(0, len(self.latents), (min(self.config.batch, len(self.latents)),), generator=self.gen)
        loss = self.ld.loss(self.latents[idx], self.gen)
        self.losses.append(float(loss.detach()))
        return loss, {}

    def eval_record(self, train_loss: float) -> dict:
        tail = self.losses[-200:] or [train_loss]
        return {"diffusion_steps": self.step, "diffusion_final_loss": sum(tail) / len(tail),
                "diffusion_seconds": round(time.time() - self.started, 1)}

    def saved_extra(self) -> tuple[dict, dict]:
        return self.ld.parts()


def train_diffusion(latents: torch.Tensor, steps: int = DiffusionTrainConfig.steps, batch: int = 64, lr: float = 1e-3, seed: int = 0,
                    config: DenoiserConfig | None = None) -> tuple[LatentDiffusion, dict]:
    """Fit the denoiser to the latents in memory (nothing written); returns it and its training figures."""
    trainer = DiffusionTrainer(latents, DiffusionTrainConfig(steps=steps, batch=batch, lr=lr, seed=seed), config)
    stats = trainer.run()
    trainer.model.eval()
    return trainer.ld, stats
