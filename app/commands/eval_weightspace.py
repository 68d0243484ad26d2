"""`redcube eval-weightspace`: each arm's rotation error and retrieval (and the token autoencoder's decoded-field PSNR) as JSON."""

from __future__ import annotations

from pathlib import Path

import torch

from app.options import check_writable, print_json
from renderer.camera import check_res
from renderer.errors import RedcubeError


def register(sub) -> None:
    p = sub.add_parser("eval-weightspace", help="evaluate train-weightspace checkpoints (arms) on their held-out objects (JSON)")
    p.add_argument("checkpoint", type=Path, nargs="+",
                   help="checkpoint files or run directories of redcube train-weightspace (any arms, one split); the "
                        "function-space arm and the principal-axes reference are always added")
    p.add_argument("--data", type=Path, required=True, help="the data set it was trained on (redcube ngp-dataset --out)")
    p.add_argument("--psnr-fields", type=int, default=2, help="fields decoded and rendered for the PSNR drop (default 2)")
    p.add_argument("--views", type=int, default=2, help="camera views per rendered field (default 2)")
    p.add_argument("--res", type=int, default=64, help="render resolution (default 64)")
    p.add_argument("--samples", type=int, default=128, help="volume-rendering samples per ray (default 128)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")


def run(args) -> int:
    from training.weightspace.eval import eval_weightspace

    torch.set_num_threads(args.threads)
    if min(args.psnr_fields, args.views, args.samples) < 1:
        raise RedcubeError("eval-weightspace --psnr-fields, --views and --samples must be positive whole numbers; fix the options.")
    check_writable(args.json)  # before minutes of evaluating
    result = eval_weightspace(args.checkpoint, args.data, args.psnr_fields, args.views, check_res(args.res), args.samples)
    print_json(result, args.json)
    return 0
