"""`redcube sample-mnif`: draw new worlds from the latent DDPM (DDIM), render them, save a contact sheet and the latents."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from app.options import add_pose_option, camera_from, save_png, write_output
from app.viewport import contact_sheet
from renderer.camera import Camera
from renderer.errors import RedcubeError
from renderer.numbers import check_number
from training.mnif.autodecode import load_mnif, render_latent
from training.mnif.diffusion import LatentDiffusion


def register(sub) -> None:
    p = sub.add_parser("sample-mnif", help="sample new cube worlds from a trained mNIF's latent diffusion model")
    p.add_argument("--mnif", type=Path, default=Path("assets/mnif"), help="mNIF run directory or checkpoint (default assets/mnif)")
    p.add_argument("--diffusion", type=Path, default=None, help="diffusion checkpoint (default: diffusion.safetensors beside the mNIF)")
    p.add_argument("-n", "--count", type=int, default=8, help="worlds to sample (default 8)")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--res", type=int, default=64, help="render resolution (default 64)")
    p.add_argument("--out", type=Path, default=Path("samples_mnif.png"), help="contact sheet PNG (default samples_mnif.png)")
    p.add_argument("--save-latents", type=Path, default=None, help="also write the sampled latents (.safetensors)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    add_pose_option(p)


def diffusion_path(mnif: Path, diffusion: Path | None) -> Path:
    """`diffusion` when given, else the diffusion.safetensors beside the mNIF."""
    return diffusion or (mnif if mnif.is_dir() else mnif.parent) / "diffusion.safetensors"


def save_latents(path: Path, latents, mnif_hash: str) -> Path:
    """Latents [N, H] as safetensors, tagged with the fingerprint of the mNIF they belong to (one sentence if unwritable)."""
    return write_output(path, lambda tmp: save_file({"latents": latents.contiguous()}, tmp,
                                                    metadata={"redcube": json.dumps({"mnif_latents_hash": mnif_hash})}))


def load_latents(path: Path, mnif_hash: str, latent_dim: int):
    """Latents [N, H] saved by `save_latents` for the mNIF with this fingerprint, or one sentence."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("redcube", "{}"))
            z = f.get_tensor("latents") if "latents" in f.keys() else None
    except Exception as e:  # missing, not safetensors, or damaged (SafetensorError derives from Exception only)
        raise RedcubeError(f"cannot read latents from {path} ({type(e).__name__}); pass a file written by Save latent or sample-mnif --save-latents.") from None
    if z is None or z.dim() != 2 or not torch.is_floating_point(z):
        raise RedcubeError(f"{path} holds no latents [N, H]; pass a file written by Save latent or sample-mnif --save-latents.")
    if z.shape[1] != latent_dim:
        raise RedcubeError(f"the latents in {path} have {z.shape[1]} numbers but this mNIF's have {latent_dim}; "
                           "load latents saved from the same mNIF.")
    if meta.get("mnif_latents_hash") not in (None, mnif_hash):
        raise RedcubeError(f"the latents in {path} were saved from another mNIF (fingerprint differs); load latents saved from this one.")
    return z.float()


def run(args) -> int:
    torch.set_num_threads(args.threads)
    check_number("--count", args.count, 1, 256, integer=True)
    model, latents, record = load_mnif(args.mnif)
    ld = LatentDiffusion.load(diffusion_path(args.mnif, args.diffusion))
    ld.check_mnif(latents)
    z = ld.sample(args.count, steps=args.steps, seed=args.seed)
    poses = (camera_from(args, model.scene).pose() if args.pose else Camera(x=0.0, z=2.0, yaw=0.0).pose())[None]
    images = [render_latent(model, phi, model.scene, poses, args.res)[0].numpy() for phi in z]
    cols = min(8, len(images))
    save_png(args.out, contact_sheet([images[i:i + cols] for i in range(0, len(images), cols)]))
    if args.save_latents:
        save_latents(args.save_latents, z, ld.mnif_hash)
    print(json.dumps({"sheet": str(args.out), "count": args.count, "ddim_steps": args.steps, "seed": args.seed,
                      "latents": str(args.save_latents) if args.save_latents else None}))
    return 0
