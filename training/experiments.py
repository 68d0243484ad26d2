"""Experiments: several training arms on the same budget, their curves collected from log.jsonl.

`overfit`: the blog's central finding: a fixed set of 100k pixel samples against streamed renders.
`inputs`: the blog's 6-D pose input against the pixel's Plücker line and ray inputs, all streamed.
`compare`: the blog's pose MLP, SIREN and the Instant-NGP radiance field on the same stream and wall-clock,
each with its own learning rate and batch (`COMPARE`), judged by held-out PSNR against time.
`latent`: the blog's "More More Renders": TinyVAE latents of 512² renders (decoded to 512²) against pixels
at 64² upscaled to 512²; both judged at 512² on the same held-out poses (`compare_at`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from training.trainer import TrainConfig


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def arms(name: str, base: TrainConfig) -> dict[str, TrainConfig]:
    """The arms of experiment `name`, each a copy of `base` with one thing changed."""
    def variant(**kw) -> TrainConfig:
        return dataclasses.replace(base, **kw)

    if name == "overfit":
        return {"fixed-100k": variant(data="fixed"), "stream": variant(data="stream")}
    if name == "latent":
        from training.latent.trainer import LatentTrainConfig

        fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"res", "heldout", "stream"}
        latent = LatentTrainConfig(**{k: getattr(base, k) for k in fields}, res=LATENT_EVAL_RES)
        return {"latent-512": latent, "pixel-64": variant(res=LATENT_EVAL_RES // 8)}
    if name == "compare":  # every arm on its own model defaults: --set would not fit three different models
        return {arm: variant(model=arm, model_config={}, **COMPARE.get(arm, {})) for arm in ("posemlp", "siren", "ngp")}
    if name == "inputs":
        return {arm: variant(model_config={**base.model_config, "input": given})
                for arm, given in (("pose-6d", "pose"), ("plucker", "plucker"), ("ray", "ray"))}
    raise ValueError(name)


COMPARE = {"ngp": {"lr": 1e-2, "batch_size": 4096, "warmup_steps": 10}}
"""Per-arm training settings of `compare` that differ from the base: the radiance field's are those of
assets/ngp_64 (Instant-NGP's lr 1e-2; a step marches 4,096 rays, not 16k pixels of a lookup)."""


def run_arms(configs: dict[str, TrainConfig], out_dir: Path, on_record=None) -> dict:
    """Train each arm in turn into out_dir/<arm>; returns {arm: {"final": metrics, "curve": eval records}}."""
    from training.engine import Hooks
    from training.latent.trainer import trainer_for

    results = {}
    for arm, cfg in configs.items():
        cfg = dataclasses.replace(cfg, out_dir=str(out_dir / arm))
        log = Path(cfg.out_dir) / "log.jsonl"
        hooks = Hooks(on_record=(lambda r, a=arm: on_record(a, r)) if on_record else None)
        final = trainer_for(cfg, hooks=hooks, overwrite=True).run()  # a rerun moves the arm's old run aside
        curve = [{k: r[k] for k in ("step", "time", "train_loss", "train_psnr", "test_psnr", "test_psnr_pooled", "test_ssim") if k in r}
                 for r in read_log(log) if r.get("event") == "eval"]
        results[arm] = {"final": final, "curve": curve, "config": dataclasses.asdict(cfg)}
    return results


LATENT_EVAL_RES = 512


@torch.no_grad()
def compare_at(results: dict, res: int = LATENT_EVAL_RES, n: int = 8, seed: int = 0) -> tuple[dict, dict]:
    """Every arm's final checkpoint judged at res² on the same n held-out poses: latent arms decoded by their
    TinyVAE, pixel arms rendered at their training resolution and upscaled bilinearly (the blog's comparison).
    Returns ({arm: summary}, {"gt": [n, res, res, 3], arm: pictures})."""
    import torch.nn.functional as F

    from renderer.rasterizer import Rasterizer
    from training.checkpoint import load_checkpoint
    from training.data import heldout_poses
    from training.evaluate import Evaluation, predict
    from training.latent.trainer import evaluate_latent
    from training.vae import vae_for_checkpoint

    scene = None
    summaries, images = {}, {}
    for arm, r in results.items():
        ckpt = load_checkpoint(Path(r["config"]["out_dir"]))
        if scene is None:
            scene = ckpt.scene
            poses = heldout_poses(scene, n, seed)
            with Rasterizer(scene) as rast:
                gt = torch.from_numpy(rast.render(poses.numpy(), res)[0])
            images["gt"] = gt
        model = ckpt.build_model()
        if ckpt.record.get("vae"):
            ev = evaluate_latent(model, vae_for_checkpoint(ckpt.record), poses, gt)[0]
        else:
            small = predict(model, poses, ckpt.record["train"]["res"]).permute(0, 3, 1, 2)
            up = F.interpolate(small, size=(res, res), mode="bilinear", align_corners=False).clamp(0, 1)
            ev = Evaluation(poses, gt, up.permute(0, 2, 3, 1))
        s = ev.summary()
        summaries[arm] = {k: s[k] for k in ("psnr", "psnr_pooled", "ssim", "psnr_median", "n", "res")}
        images[arm] = ev.pred
    return summaries, images
