"""Which TinyVAE: the shipped scene TinyVAE, a redcube VAE checkpoint, or pretrained TAESD; and a latent
checkpoint's check that it is decoded with the VAE it was trained with.

A scene TinyVAE is an ordinary redcube checkpoint (`training.checkpoint`, model kind 'tinyvae', the
AutoencoderTiny config as its model config), so it has the one load path and the one file format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from renderer.errors import RedcubeError
from renderer.tinyvae import DOWNSCALE, TinyVAE, check_state
from training.checkpoint import Checkpoint, load, save_checkpoint

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SCENE_VAE = ASSETS / "tinyvae_scene.safetensors"
DEFAULT_SOURCE = "scene"


def check_latent_res(res: int) -> int:
    """Latent mode's resolution: a multiple of the VAE's downscale, with at least 16² latents."""
    if res % DOWNSCALE or res // DOWNSCALE < 16:
        raise RedcubeError(f"latent mode needs a resolution that is a multiple of {DOWNSCALE} and at least 128; fix --res.")
    return res


def load_vae(source: str | Path | None = None) -> TinyVAE:
    """'scene' (the shipped asset), a redcube TinyVAE .safetensors, or a TAESD directory / HF cache entry / repo id."""
    source = str(source or DEFAULT_SOURCE)
    if source == DEFAULT_SOURCE:
        if not SCENE_VAE.exists():
            raise RedcubeError(f"the scene TinyVAE {SCENE_VAE} is missing; regenerate it with `redcube train-vae` (see assets/README.md) or pass --vae PATH.")
        vae = _from_checkpoint(SCENE_VAE)
        vae.name = "scene"
        return vae
    p = Path(source).expanduser()
    if p.suffix == ".safetensors" and p.is_file():
        return _from_checkpoint(p)
    return TinyVAE.from_pretrained(source).use_channels_last()


def _from_checkpoint(path: Path) -> TinyVAE:
    vae = load(path, TinyVAE.kind)
    vae.name = path.parent.name if path.stem == "checkpoint" else path.stem
    return vae


def vae_from(ckpt: Checkpoint) -> TinyVAE:
    """The TinyVAE loader (training.checkpoint.LOADERS)."""
    vae = TinyVAE(ckpt.record["model"]["config"])
    state = {k.removeprefix("ae."): v for k, v in ckpt.prefixed("model.").items()}
    check_state(vae.ae, state, str(ckpt.path))
    vae.ae.load_state_dict(state)
    return vae.eval().use_channels_last()  # 1.6x faster decoding on the CPU than the plain layout (redcube bench --only vae)


def save_vae(path: str | Path, vae: TinyVAE, scene, **kw) -> Path:
    """A TinyVAE as a redcube checkpoint (safetensors + JSON, atomic); kw as for `save_checkpoint`."""
    return save_checkpoint(path, vae, scene, extra={"vae": vae.identity(), **kw.pop("extra", {})}, **kw)


def vae_for_checkpoint(record: dict, source: str | Path | None = None) -> TinyVAE:
    """The VAE that decodes a latent checkpoint: `source` (default: the one it recorded) and its weights must match the record."""
    want = record.get("vae")
    if not want:
        raise RedcubeError("this checkpoint predicts pixels, not TinyVAE latents; drop --vae or pick a latent checkpoint.")
    vae = load_vae(source or want.get("source", DEFAULT_SOURCE))
    got = vae.identity()
    if got["sha256"] != want["sha256"]:
        raise RedcubeError(f"this latent checkpoint was trained with TinyVAE {want['name']!r} (weights {want['sha256']}) but "
                           f"{vae.name!r} has weights {got['sha256']}; decode with the VAE it was trained with (--vae) or retrain.")
    return vae


@torch.no_grad()
def encode_frames(vae: TinyVAE, rgb: torch.Tensor | np.ndarray) -> torch.Tensor:
    """frames [F, R, R, 3] -> latents [F, R/8, R/8, 4] on the CPU, one frame at a time (peak memory)."""
    rgb = torch.as_tensor(rgb)
    return torch.cat([vae.encode(f[None]).cpu() for f in rgb])


@torch.no_grad()
def decode_latents(vae: TinyVAE, latents: torch.Tensor) -> torch.Tensor:
    """latents [N, r, r, 4] -> pictures [N, 8r, 8r, 3] in [0, 1] on the CPU, one at a time (peak memory)."""
    return torch.cat([vae.decode(z[None]).cpu() for z in latents])
