"""The pixel kind: pixel batches from the stream (or the fixed set) -> pose network -> MSE -> Adam.

It runs in the one loop (`training.engine`), which serves the CLI, the experiments, the benchmark and the app
(through `training.control`). Logs go to `<out_dir>/log.jsonl`; checkpoints to `<out_dir>/checkpoint.safetensors`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

import torch

from renderer.camera import check_res
from renderer.errors import RedcubeError
from renderer.models import PIXEL_MODELS, build_model, check_size, model_config
from renderer.numbers import check_number
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from training.data import PixelSet, fixed_pixels, heldout_poses
from training.distributed import Dist
from training.engine import Engine, Hooks, Plan
from training.evaluate import Evaluation, predict
from training.metrics import mse_to_psnr
from training.stream import FrameStream, StreamConfig

@dataclass
class TrainConfig:
    DATA_MODES: ClassVar[tuple[str, ...]] = ("stream", "fixed")
    """The data modes this config trains from (latent mode offers others)."""
    model: str = "posemlp"
    """Model name from the registry (renderer.models.MODELS)."""
    model_config: dict = field(default_factory=dict)
    """Overrides of the model's config dataclass, e.g. {"input": "plucker", "width": 256}."""
    res: int = 32
    """Square training resolution of the ground-truth renders."""
    data: str = "stream"
    """'stream': fresh renders from producer processes; 'fixed': N samples drawn once."""
    fixed_samples: int = 100_000
    """Pixel samples in the fixed dataset."""
    steps: int | None = None
    """Step budget (the schedule spans it); at least one of steps and minutes is needed."""
    minutes: float | None = None
    """Wall-clock budget in minutes (the schedule spans it when no step budget is set)."""
    batch_size: int = 16384
    """Pixel samples per step."""
    lr: float = 1e-3
    """Peak Adam learning rate."""
    warmup_steps: int = 100
    """Linear warm-up steps before the cosine decay."""
    lr_final: float = 0.02
    """Final learning rate as a fraction of the peak (cosine decay)."""
    eval_every: int = 200
    """Steps between held-out evaluations."""
    log_every: int = 25
    """Steps between train-loss log records."""
    heldout: int = 32
    """Held-out test poses (fixed at the start from the seed; never trained on)."""
    checkpoint_every_s: float = 120.0
    """Seconds between periodic checkpoints after the first (one is always written at the end)."""
    first_checkpoint_s: float = 10.0
    """Seconds to the first checkpoint, so an early kill loses little."""
    seed: int = 0
    """Seeds model init, batch sampling, the data stream and the held-out poses."""
    threads: int = 0
    """torch threads (0: torch's default)."""
    compile: bool = False
    """Train through torch.compile (fuses the encoding and activations; costs a minute of compiling first)."""
    stream: StreamConfig = field(default_factory=StreamConfig)
    """Producer pool settings for data='stream'."""
    out_dir: str = "runs/latest"
    """Where log.jsonl and checkpoint.safetensors go."""

    def __post_init__(self):
        if isinstance(self.stream, dict):
            self.stream = StreamConfig(**self.stream)
        check_res(self.res)
        check_size(self.model, model_config(self.model, self.model_config), Scene())  # unknown, mistyped or huge: one sentence
        if self.model not in PIXEL_MODELS:
            raise RedcubeError(f"{self.model} is not trained from pixels here; use `redcube train-{self.model}`, "
                               f"or pick one of {list(PIXEL_MODELS)}.")
        if self.data not in self.DATA_MODES:
            latent = "; shards are latent mode's (redcube train latent)" if self.data == "shards" else ""
            raise RedcubeError(f"data mode {self.data!r} is not offered here; choose one of {list(self.DATA_MODES)}{latent}.")
        self.plan()  # the budget, --eval-every and log_every: finite and in range (a NaN budget would train forever)
        check_number("--batch-size", self.batch_size, 1, 2 ** 24, integer=True)
        check_number("--lr", self.lr, 0, 10, lo_open=True)
        check_number("--warmup-steps", self.warmup_steps, 0, 10 ** 9, integer=True)
        check_number("lr_final", self.lr_final, 0, 1)
        check_number("--heldout", self.heldout, 1, 10 ** 5, integer=True)
        check_number("--fixed-samples", self.fixed_samples, 1, 10 ** 9, integer=True)
        check_number("--checkpoint-every", self.checkpoint_every_s, 0, 1e12, lo_open=True)
        check_number("first_checkpoint_s", self.first_checkpoint_s, 0, 1e12, lo_open=True)
        check_number("--seed", self.seed, 0, 2 ** 62, integer=True)
        check_number("--threads", self.threads, 0, 4096, integer=True)

    def plan(self) -> Plan:
        return Plan.of(self, lr_floor=self.lr_final)


class Trainer(Engine):
    """The pixel kind: pose networks (posemlp, siren, ngp, ...) on pixel batches from the stream or a fixed set."""

    kind = "pixel"

    def __init__(self, config: TrainConfig, scene: Scene | None = None, resume: bool = False, hooks: Hooks | None = None,
                 overwrite: bool = False):
        self.config, self._scene_arg = config, scene
        dist = Dist.from_env()
        dist.check_same("training config", asdict(config))
        if config.batch_size % dist.world:
            raise RedcubeError(f"batch size {config.batch_size} does not split over {dist.world} ranks; "
                               f"pass a --batch-size that is a multiple of {dist.world}.")
        self.samples_per_step = config.batch_size // dist.world
        super().__init__(config.plan(), hooks, resume=resume, overwrite=overwrite)

    # ---- setup -------------------------------------------------------------------------------
    def setup(self, ckpt) -> None:
        c = self.config
        self.scene = ckpt.scene if ckpt else (self._scene_arg or Scene())
        self.model = build_model(c.model, c.model_config, self.scene)
        self.forward = self.dist.wrap(self.model)  # DistributedDataParallel under torchrun, else the model itself
        if c.compile:
            self.forward = torch.compile(self.forward)  # weights stay in self.model
        self.optimizer = torch.optim.Adam([{"params": self.model.parameters(), "lr": c.lr, "peak": c.lr}], lr=c.lr)
        self.data, self.stream = None, None

    def resume_checkpoint(self):
        ckpt = super().resume_checkpoint()
        # the recorded fields as they are (rebuilding a config would refuse a latent run's settings as a pixel run's)
        c = self.config
        model, model_config, res = (ckpt.record["train"].get(k) for k in ("model", "model_config", "res"))
        if (model, model_config, res) != (c.model, c.model_config, c.res):
            raise RedcubeError(f"{self.ckpt_path} holds a {model} {model_config} at {res}px, not the requested "
                               f"{c.model} {c.model_config} at {c.res}px; "
                               "resume with the same model or use another --out.")
        return ckpt

    def restore(self, ckpt) -> None:
        ckpt.build_model()  # one sentence when the weights do not fit the recorded model
        super().restore(ckpt)

    def on_rollback(self) -> None:
        self.config.lr *= 0.5  # the recorded config says the rate it now trains at

    # ---- data ----------------------------------------------------------------------------------
    def open(self) -> dict:
        c = self.config
        self.data = self._stored_pixels()  # first: a refusal comes before any rendering
        with Rasterizer(self.scene) as rast:
            self.test_poses = heldout_poses(self.scene, c.heldout, c.seed)
            self.test_rgb = torch.from_numpy(rast.render(self.test_poses.numpy(), c.res)[0])
            if c.data == "fixed":
                self.data = fixed_pixels(rast, c.res, c.fixed_samples, c.seed)
        if self.data is None:
            self.stream = FrameStream(self.scene, c.res, c.stream, seed=c.seed + self.step, rank=self.dist.rank,
                                      vae=self.stream_vae).start()
            self.data = self._next_buffer(self.stream, wait=True)
        return {"data": c.data, **({"backend": self.model.backend} if hasattr(self.model, "backend") else {}),
                **self._ranks(self.data)}

    stream_vae: str | None = None
    """The TinyVAE the stream's producers encode their renders with (None: they deliver the pictures)."""

    def _stored_pixels(self) -> PixelSet | None:
        """Training pixels read from disk (latent mode's shards); None: they are rendered."""
        return None

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def _ranks(self, data: PixelSet) -> dict:
        """Under torchrun: each rank's held-out checksum and first training poses, for the start record
        (the held-out sets must be identical, the data streams disjoint)."""
        if not self.dist.active:
            return {}
        mine = {"heldout_sum": float(self.test_poses.double().sum() + self.test_rgb.double().sum()),
                "first_pose": data.poses[0].tolist()}
        return {"world_size": self.dist.world, "dist_backend": self.dist.backend, "ranks": self.dist.gather(mine)}

    FIRST_BUFFER_S = 60.0
    """How long the first buffer may take (latent mode encodes it: minutes on a busy CPU)."""

    def _next_buffer(self, stream: FrameStream, wait: bool = False) -> PixelSet | None:
        """The stream's newest buffer as pixel samples (None: nothing new); `wait` for the first one."""
        got = stream.latest(wait=self.FIRST_BUFFER_S if wait else 0.0)
        if got is None:
            if wait:
                raise RedcubeError(f"the data producer delivered no frames within {self.FIRST_BUFFER_S:g} s; "
                                   "check `redcube render` works.")
            return None
        _, poses, frames = got
        return PixelSet.from_frames(poses, self._targets(frames))

    def _targets(self, frames):
        """What the network learns of a buffer's frames: the pictures themselves."""
        return frames

    # ---- step and evaluation -------------------------------------------------------------------------
    def train_step(self) -> tuple[torch.Tensor, dict]:
        """MSE of the network's colours on a fresh batch of pixel samples (the newest buffer when streaming)."""
        if self.stream is not None:
            self.data = self._next_buffer(self.stream) or self.data
        poses, uv, target = self.data.batch(self.samples_per_step, self.gen)
        return torch.nn.functional.mse_loss(self.forward(poses, uv), target), {}

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out loss, PSNR (mean over images, and pooled over all pixels) and SSIM at the training resolution."""
        s = Evaluation(self.test_poses, self.test_rgb, predict(self.model, self.test_poses, self.config.res)).summary()
        return {"test_loss": s["mse"], "test_psnr": s["psnr"], "test_psnr_pooled": s["psnr_pooled"], "test_ssim": s["ssim"]}

    def eval_record(self, train_loss: float) -> dict:
        return {"train_loss": train_loss, "train_psnr": mse_to_psnr(train_loss), **self.evaluate(), "res": self.config.res}


