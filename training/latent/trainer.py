"""Latent mode (the blog's "More More Renders"): 512² renders -> TinyVAE encoder -> 64×64×4 latents; a
pose network (posemlp, siren with out_channels=4) learns the latents at latent-pixel coordinates (the
latent grid is one more resolution of the same implicit function), and the TinyVAE decoder turns its
output back into 512² pictures.

`LatentTrainer` is the pixel `Trainer` with three things swapped: its stream carries latents (or, with
data='shards', it trains on the latents `redcube encode-latents` wrote, `training.latent.shards`), its
held-out evaluation decodes to `res`² and compares with ground truth there, and its checkpoint records
which VAE it was trained with (checked on every load by `training.vae.vae_for_checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from renderer.errors import RedcubeError
from renderer.render import render_image
from renderer.tinyvae import DOWNSCALE, TinyVAE
from training.data import PixelSet
from training.evaluate import Evaluation
from training.latent.shards import load_latents, vae_record
from training.stream import StreamConfig
from training.trainer import TrainConfig, Trainer
from training.vae import DEFAULT_SOURCE, check_latent_res, decode_latents, encode_frames, load_vae, vae_for_checkpoint

ENCODE_IN = ("producer", "trainer")


@dataclass
class LatentTrainConfig(TrainConfig):
    DATA_MODES: ClassVar[tuple[str, ...]] = ("stream", "shards")
    """'stream': renders encoded as they stream; 'shards': the latents `redcube encode-latents` wrote to `shards`."""
    res: int = 512
    """Side of the ground-truth renders; the network is trained on their (res/8)² latents."""
    heldout: int = 8
    """Held-out poses (each evaluation decodes them all at res²: about 1-4 s each on one CPU thread)."""
    vae: str = DEFAULT_SOURCE
    """TinyVAE that makes the targets and decodes the output: 'scene' (shipped), a .safetensors or a TAESD directory."""
    encode_in: str = "producer"
    """Where renders become latents: 'producer' (the stream's process, measured faster) or 'trainer' (batched here)."""
    stream: StreamConfig = field(default_factory=lambda: StreamConfig(frames_per_buffer=8, refresh_hz=0))
    """Producer pool: 8 frames a buffer, as fast as they encode (a 512² encode takes seconds on one CPU thread)."""
    shards: str = ""
    """For data='shards': the directory `redcube encode-latents` wrote (same VAE, res and scene as this run)."""

    def __post_init__(self):
        self.model_config = {**self.model_config, "out_channels": 4}
        super().__post_init__()
        check_latent_res(self.res)
        if self.encode_in not in ENCODE_IN:
            raise RedcubeError(f"encode_in {self.encode_in!r} is unknown; choose one of {list(ENCODE_IN)}.")
        if (self.data == "shards") != bool(self.shards):
            raise RedcubeError("latent training from shards needs both --data shards and --shards DIR (written by "
                               "redcube encode-latents); pass both or neither.")

    @property
    def latent_res(self) -> int:
        return self.res // DOWNSCALE


def trainer_for(config: TrainConfig, **kw) -> Trainer:
    """The trainer that fits `config`: latent configs get a LatentTrainer."""
    return (LatentTrainer if isinstance(config, LatentTrainConfig) else Trainer)(config, **kw)


@torch.no_grad()
def evaluate_latent(model: nn.Module, vae: TinyVAE, poses: torch.Tensor, gt: torch.Tensor) -> tuple[Evaluation, torch.Tensor]:
    """Decoded network pictures against ground truth gt [N, R, R, 3]; also returns the network's latents
    [N, R/8, R/8, 4] (raw, not clamped)."""
    z = torch.stack([render_image(model, p, gt.shape[1] // DOWNSCALE).float().cpu() for p in poses])
    return Evaluation(poses, gt, decode_latents(vae, z)), z


class LatentTrainer(Trainer):
    """The latent kind: the pixel kind's loop on TinyVAE latents; decoding held-out frames is not training time."""

    config: LatentTrainConfig
    kind = "latent"
    eval_is_training_time = False

    def __init__(self, config: LatentTrainConfig, scene=None, resume: bool = False, hooks=None, overwrite: bool = False):
        self.vae = load_vae(config.vae)  # before the base class: resuming checks the checkpoint's VAE
        self.vae_record = vae_record(config.vae, self.vae)  # one sentence for a VAE without 4 latent channels
        super().__init__(config, scene=scene, resume=resume, hooks=hooks, overwrite=overwrite)

    def resume_checkpoint(self):
        ckpt = super().resume_checkpoint()
        vae_for_checkpoint(ckpt.record, self.config.vae)  # one sentence if it was trained with another VAE
        return ckpt

    def open(self) -> dict:
        start = super().open()
        self.test_latents = encode_frames(self.vae, self.test_rgb)
        return start

    @property
    def stream_vae(self) -> str | None:
        return self.config.vae if self.config.encode_in == "producer" else None

    def _stored_pixels(self) -> PixelSet | None:
        """Every latent pixel of the pre-encoded shards; one sentence if they were made by another VAE, res or scene.
        Under torchrun every rank holds them all and draws its own batches (the per-rank generator)."""
        if self.config.data != "shards":
            return None
        poses, latents, _ = load_latents(self.config.shards, self.vae_record, self.config.res, self.scene.to_dict())
        return PixelSet.from_frames(poses, latents)

    FIRST_BUFFER_S = 300.0  # the first buffer encodes 8 frames at 512²: can take a minute on a busy CPU

    def _targets(self, frames):
        """Latents: the stream's own (encoded in the producer) or the frames encoded here."""
        return frames if self.config.encode_in == "producer" else encode_frames(self.vae, frames)

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out latent MSE (the training loss) and PSNR/SSIM of the decoded res² pictures against ground truth."""
        ev, z = evaluate_latent(self.model, self.vae, self.test_poses, self.test_rgb)
        s = ev.summary()
        return {"test_loss": float(((z - self.test_latents) ** 2).mean()), "test_psnr": s["psnr"],
                "test_psnr_pooled": s["psnr_pooled"], "test_ssim": s["ssim"], "test_image_mse": s["mse"]}

    def saved_extra(self) -> tuple[dict, dict]:
        return {}, {"vae": self.vae_record, "latent_res": self.config.latent_res}
