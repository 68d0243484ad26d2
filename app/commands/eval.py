"""`redcube eval`: held-out PSNR/SSIM of a checkpoint, as JSON, plus a ground truth | network | error sheet."""

from __future__ import annotations

from pathlib import Path

import torch

from app.options import print_json, save_png
from app.viewport import contact_sheet, error_map
from renderer.errors import RedcubeError
from renderer.numbers import check_number
from renderer.rasterizer import Rasterizer
from renderer.tinyvae import TinyVAE
from training.checkpoint import load_checkpoint, resolve
from training.data import POSE_SETS, heldout_poses
from training.evaluate import Evaluation, evaluate, load_poses
from training.latent.trainer import evaluate_latent
from training.vae import decode_latents, encode_frames, load_vae, vae_for_checkpoint


def register(sub) -> None:
    p = sub.add_parser("eval", help="held-out PSNR/SSIM of a checkpoint (a TinyVAE's: its round trip), and a contact sheet")
    p.add_argument("checkpoint", type=Path, help=".safetensors checkpoint or run directory")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--poses", type=Path, help='JSON list of {"x", "z", "yaw"} poses')
    src.add_argument("--n", type=int, default=32, help="number of held-out poses (the run's own held-out set; default 32)")
    p.add_argument("--pose-set", choices=POSE_SETS, default="uniform",
                   help="held-out poses of the training distribution ('uniform', a third of them sky only) or cameras "
                        "outside the cube that look at it within 0.4 rad ('aimed'); ignored with --poses")
    p.add_argument("--res", type=int, default=None, help="resolution (default: the training resolution)")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--sheet", type=Path, default=Path("redcube_eval.png"), help="contact sheet PNG (default redcube_eval.png)")
    p.add_argument("--vae", default=None, help="latent checkpoints: the TinyVAE to decode with (default: the one it recorded)")


def run(args) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    scene, (res, seed) = ckpt.scene, _recorded_res_seed(ckpt)
    poses = _poses(args, scene, seed)
    if ckpt.kind == TinyVAE.kind:  # a TinyVAE: the round trip of held-out renders, encoded and decoded
        vae, res = load_vae(resolve(args.checkpoint)), args.res or 512
        gt = _ground_truth(scene, poses, res)
        out = {"checkpoint": str(args.checkpoint), "model": "tinyvae round trip (encode, decode)", "device": "cpu"}
        return _report(args, Evaluation(poses, gt, decode_latents(vae, encode_frames(vae, gt))), res, out)
    latent = bool(ckpt.record.get("vae"))
    vae = vae_for_checkpoint(ckpt.record, args.vae) if latent or args.vae else None  # a mismatch is one sentence
    model, res = ckpt.build_model(), args.res or res
    if latent:  # the network's latents at (res/8)², decoded to res² by the TinyVAE it was trained with
        ev = evaluate_latent(model, vae, poses, _ground_truth(scene, poses, res))[0]
    else:
        ev = evaluate(model, scene, poses, res)
    out = {"checkpoint": str(args.checkpoint), "model": ckpt.kind, "step": ckpt.step, "device": "cpu",
           "pose_set": "file " + str(args.poses) if args.poses else args.pose_set,
           **({"backend": model.backend} if hasattr(model, "backend") else {}),  # the hash grid's implementation in use
           **({"vae": vae.name, "latent_res": res // 8} if latent else {})}
    return _report(args, ev, res, out)


def _recorded_res_seed(ckpt) -> tuple[int, int]:
    """The training resolution and seed the checkpoint records (64 and 0 when it records none)."""
    train = ckpt.record.get("train") or {}
    return (check_number("the checkpoint's recorded training res", train.get("res", 64), 1, 2 ** 16, integer=True),
            check_number("the checkpoint's recorded seed", train.get("seed", 0), 0, 2 ** 62, integer=True))


def _poses(args, scene, seed: int) -> torch.Tensor:
    if args.poses:
        return load_poses(args.poses, scene)
    if args.n < 1:
        raise RedcubeError("--n must be at least 1.")
    return heldout_poses(scene, args.n, seed, args.pose_set)


def _ground_truth(scene, poses: torch.Tensor, res: int) -> torch.Tensor:
    with Rasterizer(scene) as rast:
        return torch.from_numpy(rast.render(poses.numpy(), res)[0])


def _report(args, ev: Evaluation, res: int, out: dict) -> int:
    """Print (and with --json write) the figures; save the ground truth | picture | error sheet."""
    out = {**out, **ev.summary()}
    rows = [[g.numpy(), p.numpy(), error_map(p.numpy(), g.numpy())] for g, p in list(zip(ev.gt, ev.pred))[:8]]
    out["sheet"] = str(save_png(args.sheet, contact_sheet(rows, tile=max(128, res))))
    print_json(out, args.json)
    return 0
