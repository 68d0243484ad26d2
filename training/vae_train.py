"""`redcube train-vae`: a scene TinyVAE (TAESD's AutoencoderTiny architecture, from scratch) trained on
the app's own 512² renders, because no package ships TAESD weights.

The networks are convolutional, so random crops train the same weights as whole frames at a fraction
of the cost per step (a 128² crop is 1/16 of a 512² frame); evaluation uses whole held-out frames.
Crops sit on the 8-pixel latent grid, so they see the same stride phase as whole frames. Crops are
uniform by default; keeping the busiest of several candidates (`candidates`) favours cube edges so
much that the grey ground is never learnt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from renderer.camera import check_res, sample_poses
from renderer.errors import RedcubeError
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from renderer.tinyvae import DOWNSCALE, TinyVAE
from training.data import heldout_poses
from training.metrics import mse_to_psnr, psnr, ssim
from training.engine import Engine, Hooks, Plan
from training.run_dir import inside
from training.vae import decode_latents, encode_frames, load_vae


@dataclass
class VAETrainConfig:
    res: int = 512
    """Side of the rendered frames."""
    crop: int = 96
    """Side of the random training crops (a multiple of 8; res trains on whole frames)."""
    batch: int = 4
    """Crops per step."""
    frames: int = 32
    """Frames rendered per refresh of the training pool."""
    refresh_every: int = 25
    """Steps between fresh frames (fresh random poses, like the pixel stream)."""
    candidates: int = 1
    """Random crop positions tried per crop; the busiest is kept (1: uniform crops). Measured: busiest-of-4
    starves the grey ground (red-on-blue edges always win), and the VAE painted the ground sky-blue."""
    steps: int | None = None
    """Step budget (at least one of steps and minutes)."""
    minutes: float | None = None
    """Wall-clock budget in minutes."""
    lr: float = 1e-3
    """Peak Adam learning rate (cosine decay to 2 % after 50 warm-up steps)."""
    latent_noise: float = 0.0
    """Std of Gaussian noise added to latents in training, so the decoder tolerates a network's imperfect latents."""
    latent_range_weight: float = 1e-2
    """Weight of the penalty on latents beyond ±latent_magnitude, where the decoder's soft clamp flattens them.
    Without it one channel drifted to -4 ± 4 (down to -12): values the decoder ignores but a latent network must
    regress, so that channel dominated the latent networks' MSE."""
    heldout: int = 4
    """Held-out whole frames evaluated every eval_every steps (and at the end)."""
    eval_every: int = 200
    """Steps between held-out evaluations."""
    seed: int = 0
    """Seeds the weights, the poses and the crops."""
    init: str | None = None
    """Start from the weights of this TinyVAE (a redcube checkpoint or TAESD directory) instead of from scratch."""
    threads: int = 1
    """torch threads (1 leaves the other cores to the app and other jobs)."""
    out: str = "runs/tinyvae"
    """Run directory: log.jsonl and checkpoint.safetensors (+ .json)."""

    def __post_init__(self):
        check_res(self.res)
        if self.res % DOWNSCALE or self.crop % DOWNSCALE or not DOWNSCALE <= self.crop <= self.res:
            raise RedcubeError(f"res and crop must be multiples of {DOWNSCALE} with crop <= res; fix --res/--crop.")
        if min(self.batch, self.frames, self.refresh_every, self.candidates, self.heldout, self.eval_every) < 1 or self.lr <= 0:
            raise RedcubeError("batch, frames, refresh_every, candidates, heldout, eval_every and lr must be positive.")
        Plan.of(self)  # a budget, finite and in range
        if self.latent_range_weight < 0 or self.latent_noise < 0:
            raise RedcubeError("latent_noise and latent_range_weight cannot be negative; fix --latent-noise/--latent-range-weight.")


def random_crops(frames: torch.Tensor, n: int, crop: int, candidates: int, gen: torch.Generator) -> torch.Tensor:
    """n crops [n, crop, crop, 3] from frames [F, R, R, 3] at latent-grid offsets; the busiest of `candidates` each."""
    f, r = frames.shape[0], frames.shape[1]
    cells = (r - crop) // DOWNSCALE + 1
    out = []
    for _ in range(n):
        idx = torch.randint(f, (candidates,), generator=gen)
        ys, xs = (torch.randint(cells, (candidates,), generator=gen) * DOWNSCALE for _ in range(2))
        cands = [frames[i, y:y + crop, x:x + crop] for i, y, x in zip(idx.tolist(), ys.tolist(), xs.tolist())]
        out.append(max(cands, key=lambda c: float(c.var())))
    return torch.stack(out)


def latent_excess(vae: TinyVAE, z: torch.Tensor) -> torch.Tensor:
    """Mean squared excess of latents beyond ±latent_magnitude (zero inside the decoder's useful range)."""
    return torch.relu(z.abs() - vae.latent_magnitude).square().mean()


class VAETrainer(Engine):
    """The TinyVAE kind: round trips of random crops of fresh renders; held-out whole frames at every evaluation."""

    kind = "vae"
    eval_is_training_time = False

    def __init__(self, config: VAETrainConfig, scene: Scene | None = None, hooks: Hooks | None = None,
                 resume: bool = False, overwrite: bool = False):
        self.config, self.scene = config, scene or Scene()
        self.joins_run = inside(config.init, config.out)  # --init from the run in --out continues its weights in place
        super().__init__(Plan.of(config, warmup_steps=50, lr_floor=0.02, save_on_eval=True), hooks, resume, overwrite)

    def setup(self, ckpt) -> None:
        c = self.config
        self.model = (load_vae(c.init) if c.init and ckpt is None else TinyVAE()).train()
        self.model.name = f"scene-{self.out_dir.name}"
        self.optimizer = torch.optim.Adam([{"params": self.model.parameters(), "lr": c.lr, "peak": c.lr}], lr=c.lr)
        self.pool_poses = None

    def restore(self, ckpt) -> None:
        super().restore(ckpt)
        self.pool_poses = ckpt.tensors.get("pool_poses")

    def open(self) -> dict:
        c = self.config
        self.rast = Rasterizer(self.scene)
        self.test = self._render(heldout_poses(self.scene, c.heldout, c.seed))
        self.pool = self._render(self.pool_poses) if self.pool_poses is not None else None
        return {"res": c.res, "crop": c.crop}

    def close(self) -> None:
        self.rast.close()

    def _render(self, poses: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.rast.render(poses.numpy(), self.config.res)[0])

    def train_step(self) -> tuple[torch.Tensor, dict]:
        c, vae = self.config, self.model
        # 1. fresh random poses every refresh_every steps (rendering 512² frames costs little next to a step)
        if self.step % c.refresh_every == 0:
            self.pool_poses = sample_poses(self.scene, c.frames, self.gen)
            self.pool = self._render(self.pool_poses)
        # 2. MSE of the round trip of random crops, latents optionally jittered
        x = random_crops(self.pool, c.batch, c.crop, c.candidates, self.gen)
        z = vae.encode(x)
        excess = latent_excess(vae, z)  # the encoder's latents, before any jitter
        if c.latent_noise > 0:
            z = z + c.latent_noise * torch.randn(z.shape, generator=self.gen)
        loss = torch.nn.functional.mse_loss(vae.decode(z), x) + c.latent_range_weight * excess
        return loss, {}

    @torch.no_grad()
    def eval_record(self, train_loss: float) -> dict:
        """3. the round trip of held-out whole frames: PSNR (mean per frame), SSIM and the latents' excess."""
        self.model.eval()
        z = encode_frames(self.model, self.test)
        recon = decode_latents(self.model, z)
        self.model.train()
        return {"train_loss": train_loss, "train_psnr": mse_to_psnr(train_loss), "test_psnr": psnr(recon, self.test),
                "test_ssim": ssim(recon, self.test), "latent_excess": float(latent_excess(self.model, z)),
                "res": self.config.res, "heldout": self.config.heldout}

    def saved_extra(self) -> tuple[dict, dict]:
        return {"pool_poses": self.pool_poses} if self.pool_poses is not None else {}, {"vae": self.model.identity()}
