"""Every kind of model the engine trains, by name: its config dataclasses ("parts") and how they become an engine.

`redcube train KIND` turns a kind's parts into flags (`app.flags`); the app's `TrainingProcess` sends a `Job` (a kind
and its parts, as plain dicts) to its child process, which builds the same engine. One list, so the CLI and the GUI
offer the same kinds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Callable

from renderer.errors import RedcubeError
from renderer.scene import Scene
from training.checkpoint import DEFAULT_NAME
from training.engine import Engine, Hooks


@dataclass(frozen=True)
class Part:
    """One config dataclass of a kind, and how its flags are spelt."""

    name: str
    cls: type
    prefix: str = ""
    skip: tuple = ()
    aliases: dict = field(default_factory=dict)
    """Older flag spellings that keep working, by field."""


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    parts: tuple[Part, ...]
    build: Callable[..., Engine]
    """build(parts, scene, hooks, resume, overwrite) -> the engine."""
    out: Callable[[dict], str]
    """The run directory of a job's parts."""
    then: Callable[[dict, Hooks | None], Engine] | None = None
    """A second engine after the first has finished (an mNIF's latent diffusion model)."""
    checkpoint_name: str = DEFAULT_NAME
    """The first engine's checkpoint file in the run directory."""


@dataclass
class Job:
    """A kind and its configs: what the CLI parses, the app chooses and a training process runs."""

    kind: str
    parts: dict[str, Any]

    @property
    def spec(self) -> Kind:
        return kind(self.kind)

    @property
    def out_dir(self) -> Path:
        return Path(self.spec.out(self.parts))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "parts": {k: dataclasses.asdict(v) for k, v in self.parts.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        spec = kind(d["kind"])
        return cls(spec.name, {p.name: p.cls(**d["parts"][p.name]) for p in spec.parts})

    def engines(self, scene: Scene | None = None, hooks: Hooks | None = None, resume: bool = False, overwrite: bool = False):
        """The engine(s) of this job, one after the other: the next is built when the previous has run."""
        yield self.spec.build(self.parts, scene, hooks, resume, overwrite)
        if self.spec.then is not None:
            yield self.spec.then(self.parts, hooks)


def kind(name: str) -> Kind:
    if name not in kinds():
        raise RedcubeError(f"there is no training kind {name!r}; choose one of {', '.join(kinds())}.")
    return kinds()[name]


# ---- the kinds -------------------------------------------------------------------------------------------
def _pixel(parts, scene, hooks, resume, overwrite):
    from training.latent.trainer import trainer_for

    return trainer_for(parts["train"], scene=scene, resume=resume, hooks=hooks, overwrite=overwrite)


def _vae(parts, scene, hooks, resume, overwrite):
    from training.vae_train import VAETrainer

    return VAETrainer(parts["train"], scene, hooks, resume, overwrite)


def _mnif(parts, scene, hooks, resume, overwrite):
    from training.mnif.autodecode import MNIFTrainer
    from training.mnif.meta import MetaTrainer

    if "meta" in parts:
        return MetaTrainer(parts["train"], parts["meta"], parts["model"], scene, hooks, resume, overwrite)
    return MNIFTrainer(parts["train"], parts["model"], scene, hooks, resume, overwrite)


def _diffusion(parts, hooks, resume=False):
    """The denoiser on the training latents of the mNIF in `diffusion.mnif`, written beside it."""
    from training.mnif.diffusion import DiffusionTrainer
    from training.mnif.autodecode import load_mnif

    d = parts["diffusion"]
    _, latents, _ = load_mnif(Path(d.mnif) / "checkpoint.safetensors")
    denoiser = dataclasses.replace(parts["denoiser"], latent_dim=latents.shape[1])
    return DiffusionTrainer(latents, d, denoiser, d.mnif, hooks, resume)


def _after_mnif(parts, hooks):
    """The mNIF kinds train their diffusion model next, with the mNIF's seed, into the mNIF's run directory."""
    d = dataclasses.replace(parts["diffusion"], mnif=parts["train"].out, seed=parts["train"].seed)
    return _diffusion({**parts, "diffusion": d}, hooks)


def _weightspace(parts, scene, hooks, resume, overwrite):
    """Either weight-space arm: its training config carries the model's."""
    from training.weightspace.grid_train import GridTrainConfig, GridTrainer
    from training.weightspace.train import WeightSpaceTrainer

    engine = GridTrainer if isinstance(parts["train"], GridTrainConfig) else WeightSpaceTrainer
    return engine(dataclasses.replace(parts["train"], model=parts["model"]), hooks, resume, overwrite)


@cache
def kinds() -> dict[str, Kind]:
    """Every kind by name (built on first use: the config modules import torch and diffusers)."""
    from renderer.models.mnif import MNIFConfig
    from training.latent.trainer import LatentTrainConfig
    from training.mnif.diffusion import DenoiserConfig, DiffusionTrainConfig
    from training.mnif.autodecode import MNIFTrainConfig
    from training.mnif.meta import MetaConfig
    from training.trainer import TrainConfig
    from training.vae_train import VAETrainConfig
    from training.weightspace.grid_model import GridConfig
    from training.weightspace.grid_train import GridTrainConfig
    from training.weightspace.model import WeightSpaceConfig
    from training.weightspace.train import WeightSpaceTrainConfig

    pixel = {"out_dir": ["--out"], "checkpoint_every_s": ["--checkpoint-every"]}
    mnif_parts = (Part("train", MNIFTrainConfig), Part("model", MNIFConfig),
                  Part("diffusion", DiffusionTrainConfig, "diffusion-", skip=("mnif", "seed")),
                  Part("denoiser", DenoiserConfig, "denoiser-", skip=("latent_dim",)))
    out = lambda parts: parts["train"].out  # noqa: E731
    kinds = [
        Kind("pixel", "a pose network (posemlp, siren, ngp, ...) on streamed or fixed pixels",
             (Part("train", TrainConfig, skip=("model_config",), aliases=pixel),), _pixel, lambda p: p["train"].out_dir),
        Kind("latent", "a pose network on TinyVAE latents of renders (latent mode), decoded to pictures",
             (Part("train", LatentTrainConfig, skip=("model_config",), aliases=pixel),), _pixel, lambda p: p["train"].out_dir),
        Kind("vae", "the scene TinyVAE (TAESD's architecture) on the app's own renders",
             (Part("train", VAETrainConfig),), _vae, out),
        Kind("mnif", "an mNIF over the cube-world family by auto-decoding (paper Algorithm 2), then its latent DDPM",
             mnif_parts, _mnif, out, _after_mnif),
        Kind("mnif-meta", "an mNIF by meta-learning (Algorithm 1: CAVIA inner loop, Meta-SGD rates), then its latent DDPM",
             (*mnif_parts, Part("meta", MetaConfig)), _mnif, out, _after_mnif),
        Kind("diffusion", "the latent DDPM of an mNIF already trained (written beside it)",
             (Part("diffusion", DiffusionTrainConfig, "diffusion-", aliases={"mnif": ["--out"]}),
              Part("denoiser", DenoiserConfig, "denoiser-", skip=("latent_dim",))),
             lambda parts, scene, hooks, resume, overwrite: _diffusion(parts, hooks, resume), lambda p: p["diffusion"].mnif,
             checkpoint_name="diffusion.safetensors"),
        Kind("weightspace", "the weight-space autoencoder (seed 004) on an NGP field data set",
             (Part("train", WeightSpaceTrainConfig, skip=("model",), aliases={"n_pos": ["--pos-tokens"], "noise_std": ["--noise"]}),
              Part("model", WeightSpaceConfig)), _weightspace, out),
        Kind("weightspace-grid", "the grid arm: a 3-D conv net on the densely stored hash levels of an NGP field data set",
             (Part("train", GridTrainConfig, skip=("model",)), Part("model", GridConfig, "grid-", skip=("features_per_level",))),
             _weightspace, out),
    ]
    return {k.name: k for k in kinds}
