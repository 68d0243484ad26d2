"""TinyVAE: TAESD's tiny autoencoder (diffusers' `AutoencoderTiny`) with redcube's conventions in one place.

Conventions (this module is the only place that knows them):
- images are float [N, H, W, 3] in [0, 1], rows from the top, as the rasterizer and `render_image` make them;
  `AutoencoderTiny`'s encoder takes [-1, 1] NCHW (and maps it to TAESD's [0, 1] inside), its decoder returns [-1, 1].
- latents are float [N, H/8, W/8, 4], channels last like images: the latent grid is just a low-resolution
  image of the same implicit function, so `PixelSet.from_frames` and `pixel_uv` treat it like pixels.
  Their unit is the encoder's output times `scaling_factor` (1.0 for TAESD, whose latents are already
  Stable Diffusion's scaled latents); the decoder soft-clamps them to ±latent_magnitude (tanh(z/3)·3).
- a latent *picture* (storage as 8 bits, the viewport's three-channel view) maps z to
  z / (2·latent_magnitude) + latent_shift, clamped to [0, 1] (TAESD's uint8 convention).

Pretrained TAESD weights load through diffusers' `from_pretrained(..., local_files_only=True)` from a
diffusers-layout directory (config.json + diffusion_pytorch_model.safetensors) or a Hugging Face cache entry
(`models--madebyollin--taesd` or the repo id `madebyollin/taesd`), never from the network and never from a pickle. redcube's own scene
TinyVAE is a redcube checkpoint (see `training/vae.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from renderer.errors import RedcubeError

DOWNSCALE = 8
"""Image pixels per latent pixel along each axis (three stride-2 stages)."""
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
TAESD_REPO = "madebyollin/taesd"


def default_config() -> dict:
    """TAESD's AutoencoderTiny config (the layout of madebyollin/taesd), as plain JSON values."""
    from diffusers import AutoencoderTiny

    return _plain_config(AutoencoderTiny().config)


def _plain_config(config) -> dict:
    skip = {"block_out_channels"}  # a deprecated alias AutoencoderTiny records but does not accept back
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not k.startswith("_") and k not in skip}


class TinyVAE(nn.Module):
    """Encoder and decoder of one AutoencoderTiny; images and latents in redcube's layout (module docstring)."""

    kind = "tinyvae"

    def __init__(self, config: dict | None = None, name: str = "tinyvae", ae: nn.Module | None = None):
        """`ae`: an AutoencoderTiny already built (from_pretrained), else one from `config`."""
        super().__init__()
        from diffusers import AutoencoderTiny

        self.ae = ae if ae is not None else AutoencoderTiny.from_config(config or default_config())
        self.config = _plain_config(self.ae.config)
        self.name = name
        if self.config.get("in_channels", 3) != 3 or self.config.get("out_channels", 3) != 3:
            raise RedcubeError("this TinyVAE is not an RGB autoencoder (in/out channels are not 3); use TAESD-layout weights.")

    # ---- conventions ---------------------------------------------------------------------------
    @property
    def latent_channels(self) -> int:
        return int(self.config["latent_channels"])

    @property
    def latent_magnitude(self) -> float:
        """The decoder's soft clamp: latents z enter it as tanh(z / m) * m."""
        return float(self.config["latent_magnitude"])

    @property
    def scaling_factor(self) -> float:
        return float(self.config.get("scaling_factor", 1.0))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [N, H, W, 3] in [0, 1] (H, W multiples of 8) -> latents [N, H/8, W/8, 4]."""
        if images.shape[-1] != 3 or images.shape[-2] % DOWNSCALE or images.shape[-3] % DOWNSCALE:
            raise RedcubeError(f"TinyVAE encodes RGB images whose sides are multiples of {DOWNSCALE}; got shape {tuple(images.shape)}.")
        x = images.to(self.device, torch.float32).permute(0, 3, 1, 2) * 2 - 1  # [0, 1] -> [-1, 1], NCHW
        z = self.ae.encoder(x) * self.scaling_factor
        return z.permute(0, 2, 3, 1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents [N, h, w, 4] -> images [N, 8h, 8w, 3], clamped to [0, 1] only when not training."""
        z = latents.to(self.device).permute(0, 3, 1, 2) / self.scaling_factor
        z = z.to(memory_format=torch.channels_last) if self._channels_last else z
        x = (self.ae.decoder(z) + 1) / 2  # [-1, 1] -> [0, 1]
        x = x.permute(0, 2, 3, 1)
        return x if self.training else x.clamp(0, 1)

    def latent_picture(self, latents: torch.Tensor, channels: int = 3) -> torch.Tensor:
        """The first `channels` latent channels as a picture in [0, 1] (TAESD's uint8 scaling), [..., channels]."""
        m, s = self.latent_magnitude, float(self.config["latent_shift"])
        return (latents[..., :channels] / (2 * m) + s).clamp(0, 1)

    _channels_last = False

    def use_channels_last(self, on: bool = True) -> "TinyVAE":
        """Run the decoder's convolutions in channels-last memory format (see `redcube bench --only vae`)."""
        self._channels_last = on
        self.ae.decoder.to(memory_format=torch.channels_last if on else torch.contiguous_format)
        return self

    # ---- identity ------------------------------------------------------------------------------
    def identity(self) -> dict:
        """What a latent checkpoint records about its VAE: name and a hash of the weights."""
        h = hashlib.sha256()
        for k, v in sorted(self.ae.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return {"name": self.name, "sha256": h.hexdigest()[:16], "latent_channels": self.latent_channels}

    # ---- pretrained (diffusers) layout ---------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source: str | Path) -> "TinyVAE":
        """TAESD-layout weights through diffusers' `from_pretrained(..., local_files_only=True)`: a diffusers directory, a
        Hugging Face cache entry, or a repo id in the cache; never the network, never a pickle; one sentence if unusable."""
        from diffusers import AutoencoderTiny

        where, cache_dir, name = pretrained_source(source)
        try:
            ae = AutoencoderTiny.from_pretrained(where, cache_dir=cache_dir, local_files_only=True, use_safetensors=True,
                                                 low_cpu_mem_usage=False)  # True wants `accelerate`, and says so at length
        except Exception as e:  # diffusers says it in paragraphs (OSError when absent, ValueError for wrong shapes)
            if cache_dir is not None or not Path(where).exists():
                raise RedcubeError(f"{source} is not in the Hugging Face cache ({cache_dir or _hf_cache()}) and redcube never "
                                   "downloads; copy TAESD's diffusers files to a directory and pass --vae DIR.") from None
            raise RedcubeError(f"{where} does not hold loadable AutoencoderTiny weights ({type(e).__name__}); point --vae at "
                               "TAESD weights in diffusers layout.") from None
        return cls(name=f"pretrained:{name}", ae=ae).eval()


def pretrained_source(source: str | Path) -> tuple[str, str | None, str]:
    """(what diffusers' from_pretrained reads, its cache directory, a short name): a local diffusers directory as it
    is (checked first, so a wrong one is one sentence), a cache entry `models--org--name` as its repo id in the cache
    that holds it, a repo id in the user's cache."""
    p = Path(source).expanduser()
    if p.is_dir() and p.name.startswith("models--"):
        return p.name.removeprefix("models--").replace("--", "/"), str(p.parent), p.name.split("--")[-1]
    if not p.exists() and "/" in str(source) and not str(source).startswith((".", "/", "~")):
        return str(source), str(_hf_cache()), str(source).split("/")[-1]
    if not p.exists():
        raise RedcubeError(f"VAE path {p} does not exist; pass a TAESD directory (config.json + {WEIGHTS_NAME}), a Hugging Face cache entry or 'scene'.")
    if not (p.is_dir() and (p / "config.json").exists() and (p / WEIGHTS_NAME).exists()):
        raise RedcubeError(f"{p} is not a TAESD directory in diffusers layout (config.json + {WEIGHTS_NAME}); "
                           "pass the folder that holds both (pickled .pth/.bin weights are not read).")
    try:
        config = json.loads((p / "config.json").read_text())
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not text at all
        raise RedcubeError(f"{p}/config.json is unreadable ({type(e).__name__}); point --vae at a TAESD directory in diffusers layout.") from None
    if not isinstance(config, dict):
        raise RedcubeError(f"{p}/config.json holds a JSON {type(config).__name__}, not an object of settings; "
                           "point --vae at a TAESD directory in diffusers layout.")
    if config.get("_class_name", "AutoencoderTiny") != "AutoencoderTiny":
        raise RedcubeError(f"{p} holds a {config['_class_name']}, not an AutoencoderTiny; point --vae at TAESD weights (e.g. {TAESD_REPO}).")
    return str(p), None, p.name


def check_state(ae: nn.Module, state: dict, where: str) -> None:
    """One sentence when `state` does not fit the AutoencoderTiny `ae` (missing, unexpected or wrong-shaped tensors)."""
    ours = ae.state_dict()
    missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
    shapes = [k for k in ours if k in state and ours[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        raise RedcubeError(f"{where} holds weights incompatible with its AutoencoderTiny config (missing {missing[:2]}, "
                           f"unexpected {unexpected[:2]}, wrong shape {shapes[:2]}); point --vae at TAESD-layout weights.")


def _hf_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
