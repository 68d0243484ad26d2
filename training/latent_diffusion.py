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
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from renderer.errors import RedcubeError
from training.checkpoint import atomic_write, load_checkpoint

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

    def normalise(self, phi: torch.Tensor) -> torch.Tensor:
        return (phi - self.mean) / self.std

    def loss(self, phi: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training steps 1-3 on a batch of latents [B, H]."""
        z0 = self.normalise(phi)
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
        from safetensors.torch import save_file
        import json

        path = Path(path)
        record = {"format": "redcube-checkpoint", "version": 1, "model": {"kind": "latent-ddpm", "config": asdict(self.config)},
                  "scene": {}, "step": 0, "metrics": metrics or {}, "mnif_latents_hash": self.mnif_hash, "role": FORMAT}
        tensors = {f"model.{k}": v.detach().contiguous() for k, v in self.model.state_dict().items()}
        tensors.update({"latent_mean": self.mean.contiguous(), "latent_std": self.std.contiguous()})
        text = json.dumps(record, indent=2)
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"redcube": text}))
        atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text + "\n"))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LatentDiffusion":
        ckpt = load_checkpoint(path)
        if ckpt.record.get("role") != FORMAT:
            raise RedcubeError(f"{path} is a {ckpt.kind} checkpoint, not a latent diffusion model; pass the diffusion checkpoint written by redcube train-mnif.")
        ld = cls(DenoiserConfig(**ckpt.record["model"]["config"]), ckpt.tensors["latent_mean"], ckpt.tensors["latent_std"],
                 ckpt.record["mnif_latents_hash"])
        ld.model.load_state_dict(ckpt.prefixed("model."))
        ld.model.eval()
        return ld


def train_diffusion(latents: torch.Tensor, steps: int = 4000, batch: int = 64, lr: float = 1e-3, seed: int = 0,
                    config: DenoiserConfig | None = None, log=None) -> tuple[LatentDiffusion, dict]:
    """Fit the denoiser to the latents (Adam, cosine learning rate without warm-up, as the paper)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    ld = LatentDiffusion.for_latents(latents, config)
    opt = torch.optim.Adam(ld.model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start, losses = time.time(), []
    ld.model.train()
    for step in range(steps):
        idx = torch.randint(0, len(latents), (min(batch, len(latents)),), generator=gen)
        loss = ld.loss(latents[idx], gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log and (step + 1) % 500 == 0:
            log(f"diffusion step {step + 1}: loss {sum(losses[-500:]) / 500:.4f}")
    ld.model.eval()
    return ld, {"diffusion_steps": steps, "diffusion_final_loss": sum(losses[-200:]) / len(losses[-200:]),
                "diffusion_seconds": round(time.time() - start, 1)}
