"""Experiments: several training arms on the same budget, their curves collected from log.jsonl.

`overfit`: the blog's central finding: a fixed set of 100k pixel samples against streamed renders.
`inputs`: the blog's 6-D pose input against the pixel's Plücker line and ray inputs, all streamed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from training.trainer import TrainConfig, Trainer


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def arms(name: str, base: TrainConfig) -> dict[str, TrainConfig]:
    """The arms of experiment `name`, each a copy of `base` with one thing changed."""
    def variant(**kw) -> TrainConfig:
        return dataclasses.replace(base, **kw)

    if name == "overfit":
        return {"fixed-100k": variant(data="fixed"), "stream": variant(data="stream")}
    if name == "inputs":
        mc = dict(base.model_config)
        return {"pose-6d": variant(model_config={**mc, "input": "pose"}),
                "plucker": variant(model_config={**mc, "input": "plucker"}),
                "ray": variant(model_config={**mc, "input": "ray"})}
    raise ValueError(name)


def run_arms(configs: dict[str, TrainConfig], out_dir: Path, on_record=None) -> dict:
    """Train each arm in turn into out_dir/<arm>; returns {arm: {"final": metrics, "curve": eval records}}."""
    from training.trainer import Hooks

    results = {}
    for arm, cfg in configs.items():
        cfg = dataclasses.replace(cfg, out_dir=str(out_dir / arm))
        log = Path(cfg.out_dir) / "log.jsonl"
        log.unlink(missing_ok=True)
        hooks = Hooks(on_record=(lambda r, a=arm: on_record(a, r)) if on_record else None)
        final = Trainer(cfg, hooks=hooks).run()
        curve = [{k: r[k] for k in ("step", "time", "train_loss", "train_psnr", "test_psnr", "test_ssim")}
                 for r in read_log(log) if r.get("event") == "eval"]
        results[arm] = {"final": final, "curve": curve, "config": cfg.to_dict()}
    return results
