"""Issue 19's diagnosis: why seed 004's rotation head learned nothing, as runs anyone can repeat.

    python -m training.weightspace.diagnosis --data assets/weightspace/fields --objects 6 --steps 600 --json F

  1. labels: the principal-axes reference (no learning) against four readings of "the relative rotation" of a pair:
     q_b q_a^-1 (the code's), its inverse q_a q_b^-1, and the two other products. Only the right one scores ~1 deg.
  2. the loss near 180 deg: |d L_rot / d q_pred| of the squared geodesic loss as the error approaches 180 deg
  3. hashing: per level, how many grid vertices share one table entry (1 = dense: a voxel grid; more = scrambled)
  4. overfitting `objects` x K rotations (every ordered pair of two rotations of one object, training pairs only):
     a plain MLP on the two raw weight vectors (full batch); the seed's model with the rotation loss alone, no
     dropout, noise or permutation; the seed's model with the seed's whole objective and regularisation. Each logs
     the median error on those pairs and how much the [POS] latent differs between fields (std over fields / mean |z|)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.quaternions import angle_between, conjugate, multiply
from training.engine import Fit, Hooks
from training.ngp_dataset import load_fields
from training.rotation_baseline import moment_rotation, rotation_error_deg
from training.weightspace.data import PairSampler, same_pairs
from training.weightspace.grid import dense_levels
from training.weightspace.losses import GAMMAS, geodesic_loss, loss_terms, relative_rotation
from training.weightspace.model import WeightSpaceAutoencoder, WeightSpaceConfig
from training.weightspace.tokens import Tokenizer, sample_token_points
from training.weightspace.train import eval_set, evaluate, token_scales

SANE = WeightSpaceConfig(embed=64, latent=32, heads=4, layers=2, dropout=0.0)


def subset(fields: dict, n_objects: int) -> dict:
    keep = torch.isin(fields["object_ids"], fields["object_ids"].unique()[:n_objects])
    return {k: v[keep] for k, v in fields.items()}


def label_check(fields: dict, field_config: ObjectFieldConfig, pairs: int = 12) -> dict:
    """Step 1: median reference error (deg) against each reading of the label."""
    i, j = (t[:pairs] for t in same_pairs(fields["object_ids"]))
    q = fields["quaternions"]
    readings = {"q_b q_a^-1 (used)": lambda a, b: multiply(b, conjugate(a)), "q_a q_b^-1": lambda a, b: multiply(a, conjugate(b)),
                "q_a^-1 q_b": lambda a, b: multiply(conjugate(a), b), "q_b^-1 q_a": lambda a, b: multiply(conjugate(b), a)}
    built = {}
    field = lambda r: built.setdefault(r, ObjectField(field_config).load_flat(fields["params"][r]))
    estimates = [moment_rotation(field(int(a)), field(int(b))) for a, b in zip(i, j)]
    return {name: float(torch.tensor([rotation_error_deg(r, f(q[a], q[b])) for r, a, b in zip(estimates, i, j)]).median())
            for name, f in readings.items()}


def gradient_near_180() -> dict:
    """Step 2: gradient norm of the squared geodesic loss w.r.t. an unnormalised prediction at errors up to 180 deg."""
    out = {}
    for deg in (90.0, 170.0, 179.0, 179.9, 180.0):
        half = math.radians(deg) / 2
        pred = torch.tensor([math.cos(half), math.sin(half), 0.0, 0.0], requires_grad=True)
        geodesic_loss(pred[None], torch.tensor([[1.0, 0.0, 0.0, 0.0]])).backward()
        out[f"{deg:g}"] = round(float(pred.grad.norm()), 4)
    return out


def hashing(layout: dict) -> list[dict]:
    """Step 3: grid vertices per table entry, level by level."""
    return [{"level": k, "resolution": lv["resolution"], "entries": lv["size"],
             "vertices_per_entry": round(lv["resolution"] ** 3 / lv["size"], 2), "dense": lv["resolution"] ** 3 <= lv["size"]}
            for k, lv in enumerate(layout["levels"])]


def overfit_mlp(fields: dict, layout: dict, steps: int) -> list[dict]:
    """Step 4a: an MLP on (weights a, weights b) of the densely stored levels (the whole vector is 55k values a field:
    too big a first layer for this machine), standardised, full batch over every training pair."""
    x = fields["params"][:, :layout["hash_grid"]["n_features_per_level"] * sum(lv["size"] for lv in layout["levels"][:dense_levels(layout)])]
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    i, j = same_pairs(fields["object_ids"])
    q_true = relative_rotation(fields["quaternions"][i], fields["quaternions"][j])
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2 * x.shape[1], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
    last = {}

    def loss() -> torch.Tensor:
        last["pred"] = net(torch.cat([x[i], x[j]], 1))
        return geodesic_loss(last["pred"], q_true)

    median = lambda: {"train_median_deg": round(float(torch.rad2deg(angle_between(q_true, last["pred"].detach())).median()), 2)}  # noqa: E731
    return _curve(Fit(net, torch.optim.Adam(net.parameters(), lr=1e-3), loss, steps, median, eval_every=100))


def overfit_sane(fields: dict, layout: dict, steps: int, whole_objective: bool) -> list[dict]:
    """Step 4b/c: the seed's model on pairs of these objects; rotation loss alone and plain, or the seed's everything."""
    objects = fields["object_ids"].unique()
    tok = Tokenizer(layout, sample_token_points(64, 0), 10)
    scales = token_scales(tok.tokenize(fields["params"]), tok)
    sampler = PairSampler(fields, tok, objects, permute=whole_objective, noise_std=0.1 if whole_objective else 0.0)
    es = eval_set(fields, tok, objects, scales)
    torch.manual_seed(0)
    config = WeightSpaceConfig(**{**SANE.__dict__, "dropout": 0.1 if whole_objective else 0.0})
    model = WeightSpaceAutoencoder(config, tok)
    gen, first = torch.Generator().manual_seed(0), {"step": 0, "pos_between_field_ratio": pos_ratio(model, es)}
    gammas = GAMMAS if whole_objective else (0.0, 0.0, 1.0, 0.0)

    def loss() -> torch.Tensor:
        b = sampler.batch(len(objects), gen)
        return loss_terms(model, b.tokens_a / scales, b.tokens_b / scales, b.q_a, b.q_b, tok.mask, gammas=gammas)[0]

    def figures() -> dict:
        return {"train_median_deg": round(evaluate(model, es, tok.mask)["median_rotation_error_deg"], 2),
                "pos_between_field_ratio": pos_ratio(model, es)}
    return [first, *_curve(Fit(model, torch.optim.AdamW(model.parameters(), lr=1e-3), loss, steps, figures, eval_every=100))]


def _curve(fit: Fit) -> list[dict]:
    """Run the fit; its evaluations every 100 steps (not the final one between them) as the curve."""
    curve = []
    fit.hooks = Hooks(on_record=lambda r: r["event"] == "eval" and r["step"] % 100 == 0 and curve.append(
        {"step": r["step"], **{k: v for k, v in r.items() if k in ("train_median_deg", "pos_between_field_ratio")}}))
    fit.run()
    return curve


@torch.no_grad()
def pos_ratio(model: WeightSpaceAutoencoder, es) -> float:
    """Std over fields of the [POS] latents / their mean magnitude: near 0, the head sees the same input for every field."""
    model.eval()
    z = model.encode(es.tokens)[:, model.is_pos]
    model.train()
    return round(float(z.std(0).mean() / z.abs().mean()), 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--objects", type=int, default=8)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    fields, manifest = load_fields(args.data)
    fields = subset(fields, args.objects)
    layout, start = manifest["layout"], time.time()
    rotations = len(fields["object_ids"]) // args.objects
    out = {"data": str(args.data), "objects": args.objects, "rotations": rotations,
           "training_pairs": args.objects * rotations * (rotations - 1),
           "labels_reference_median_deg": label_check(fields, ObjectFieldConfig(**manifest["settings"]["field"])),
           "loss_gradient_norm_by_error_deg": gradient_near_180(), "hashing": hashing(layout),
           "overfit_mlp_raw_weights": overfit_mlp(fields, layout, args.steps),
           "overfit_sane_rotation_loss_only": overfit_sane(fields, layout, args.steps, False),
           "overfit_sane_seed_objective": overfit_sane(fields, layout, args.steps, True)}
    out["seconds"] = round(time.time() - start)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
