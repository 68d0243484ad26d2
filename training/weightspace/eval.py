"""Evaluating weight-space arms (issues 7 and 19) on the objects their training held out.

  1. the same object split as training (its seed and held-out objects, from the checkpoints' records; every arm given
     must share it), or every object of a data set made with another seed (objects training never saw)
  2. each arm (`training.weightspace.arms`: the checkpoints given, plus the no-learning feature arm and the
     function-space probe arm) on every field of those objects: median relative-rotation error over every ordered
     same-object pair, same-object retrieval top-1
  3. decoding, for the token autoencoder: tokens -> encode -> decode -> x scales -> `Tokenizer.detokenize` (zeros where
     no token reaches) -> a field; the original and the decoded field are volume-rendered beside the object's analytic
     field (its ground truth), and decoded_psnr_drop_db = PSNR(original vs truth) - PSNR(decoded vs truth), averaged over
     fields; tokenized_psnr (the exact tokens turned back into weights) is the most any decoder can give back
  4. a reference that learns nothing (`training.rotation_baseline`): the relative rotation from the occupancy's
     principal axes, on the same objects; it says whether the fields hold their rotation, apart from any learner
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from renderer.errors import RedcubeError
from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.polycubes import polycube
from training.ngp_dataset import check_layout, load_fields, object_seed
from training.ngp_fields import analytic_density, eval_poses, render_field
from training.metrics import psnr
from training.rotation_baseline import moment_rotation, rotation_error_deg
from training.weightspace.losses import relative_rotation
from training.weightspace.data import split_objects
from training.weightspace.arms import READS, WEIGHTS_ONLY, FeatureArm, ProbeArm, load_arm
from training.weightspace.train import CHANCE_ROTATION_ERROR_DEG, chance_top1


@torch.no_grad()
def decoded_psnr(model, tokenizer, scales, flat: torch.Tensor, obj, q, field_config: ObjectFieldConfig,
                 views: int, res: int, samples: int, seed: int) -> dict:
    """Step 3 for one field vector [P]: PSNR against the analytic truth of the original field, of the field rebuilt from
    its exact tokens (the tokenizer's ceiling: hash entries no point reaches are zero) and of the decoded field."""
    tokens = tokenizer.tokenize(flat[None]) / scales
    decoded = tokenizer.detokenize(model.decode(model.encode(tokens)) * scales)[0]
    exact = tokenizer.detokenize(tokens * scales)[0]
    poses = eval_poses(views, seed)
    box = ObjectField(field_config).box
    truth = render_field(analytic_density(obj, q, field_config.sigma_max), box, poses, res, samples, 1)
    score = lambda v: psnr(render_field(ObjectField(field_config).load_flat(v).field, box, poses, res, samples, 1), truth)
    return {"original_psnr": score(flat), "tokenized_psnr": score(exact), "decoded_psnr": score(decoded)}


def baseline_errors(fields: dict, objects: torch.Tensor, field_config: ObjectFieldConfig) -> list[float]:
    """`training.rotation_baseline` (no learning) on every unordered pair of two rotations of each object: errors (deg)."""
    errors = []
    for o in objects.tolist():
        rows = (fields["object_ids"] == o).nonzero().squeeze(1).tolist()
        built = {r: ObjectField(field_config).load_flat(fields["params"][r]) for r in rows}  # each field once
        for a, b in itertools.combinations(rows, 2):
            q = relative_rotation(fields["quaternions"][a], fields["quaternions"][b])
            errors.append(rotation_error_deg(moment_rotation(built[a], built[b]), q))
    return errors


def other_objects(manifest: dict, record: dict) -> bool:
    """True when the data set was made with another seed than training's: its objects are all new."""
    data = record.get("data") or {}
    return "seed" in data and data["seed"] != manifest["settings"]["seed"]


def unseen_objects(fields: dict, manifest: dict, record: dict) -> torch.Tensor:
    """The objects [K] training never saw: every one of a data set of another seed, else the held-out objects the
    checkpoint records (older checkpoints: the same seeded split again)."""
    data, train = record.get("data") or {}, record["train"]
    if other_objects(manifest, record):
        return fields["object_ids"].unique()
    if "heldout_objects" in data:
        return torch.tensor(data["heldout_objects"], dtype=fields["object_ids"].dtype)
    return split_objects(fields["object_ids"], train["heldout"], train["seed"])[1]


def eval_objects(fields: dict, manifest: dict, record: dict) -> tuple[torch.Tensor, str]:
    """The objects to evaluate on: every one of a data set of other objects (another seed), else training's held-out
    objects, else (fewer than two held out) the training objects."""
    held = unseen_objects(fields, manifest, record)
    if other_objects(manifest, record):
        return held, "unseen data set"
    if len(held) >= 2:
        return held, "heldout"
    objects = fields["object_ids"].unique()
    return objects[~torch.isin(objects, held)], "train"


def eval_weightspace(checkpoints: list[Path], data: Path, psnr_fields: int = 2, views: int = 2, res: int = 64,
                     samples: int = 128) -> dict:
    """Steps 1-4 for every arm: `arms` {name: figures}, the top-level median_rotation_error_deg and retrieval_top1 of
    the best arm that reads weights only, chance and the principal-axes reference beside them, and (with a sane-tokens
    checkpoint) decoded_psnr_drop_db."""
    arms = [load_arm(p) for p in checkpoints]
    fields, manifest = load_fields(Path(data))
    for arm in arms:
        check_layout(manifest["layout"], arm.layout, str(data))
    objects, split = shared_eval_objects(arms, fields, manifest)  # 1.
    rows = torch.isin(fields["object_ids"], objects).nonzero().squeeze(1)
    field_config = ObjectFieldConfig(**manifest["settings"]["field"])
    extra = [FeatureArm(manifest["layout"]), ProbeArm(field_config)]  # need no checkpoint
    figures = {arm.name: arm_figures(arm, fields, rows) for arm in [*arms, *extra]}  # 2.
    best = min((n for n in figures if WEIGHTS_ONLY[n]), key=lambda n: figures[n]["median_rotation_error_deg"])
    baseline = torch.tensor(baseline_errors(fields, objects, field_config))  # 4.
    out = {"median_rotation_error_deg": figures[best]["median_rotation_error_deg"], "retrieval_top1": figures[best]["retrieval_top1"],
           "best_weights_only_arm": best, "arms": figures,
           "chance_rotation_error_deg": CHANCE_ROTATION_ERROR_DEG, "chance_retrieval_top1": chance_top1(fields["object_ids"][rows]),
           "moment_baseline_rotation_error_deg": float(baseline.median()),
           "moment_baseline": {"what": "principal axes of each field's occupancy at 24^3 points, signs by overlap; no learning "
                                       "(training.rotation_baseline)", "pairs": len(baseline),
                               "share_within_20_deg": float((baseline <= 20).float().mean())},
           "split": split, "pairs": figures[best]["pairs"], "fields": len(rows), "objects": len(objects)}
    sane = next((a for a in arms if a.name == "sane-tokens"), None)
    if sane is not None:  # 3.
        out.update(decoding(sane, fields, manifest, objects, field_config, psnr_fields, views, res, samples))
    return out


def arm_figures(arm, fields: dict, rows: torch.Tensor) -> dict:
    """One arm's figures on the fields at `rows`, with what it reads."""
    m = arm.evaluate(fields, rows)
    return {"median_rotation_error_deg": m["median_rotation_error_deg"], "retrieval_top1": m["retrieval_top1"],
            "pairs": m["pairs"], "weights_only": WEIGHTS_ONLY[arm.name], "reads": READS[arm.name],
            **({"share_within_15_deg": m["share_within_15_deg"]} if "share_within_15_deg" in m else {})}


def shared_eval_objects(arms: list, fields: dict, manifest: dict) -> tuple[torch.Tensor, str]:
    """The objects every arm was kept away from (step 1); one sentence when the arms were trained on different splits."""
    if not arms:
        raise RedcubeError("eval-weightspace needs at least one checkpoint of train-weightspace; pass one or more.")
    found = [eval_objects(fields, manifest, arm.record) for arm in arms]
    if any(not torch.equal(f[0], found[0][0]) or f[1] != found[0][1] for f in found):
        raise RedcubeError("these checkpoints were trained on different object splits, so no one set of objects is new to "
                           "all of them; evaluate arms trained with the same --data, --heldout and --seed together.")
    return found[0]


def decoding(arm, fields: dict, manifest: dict, objects: torch.Tensor, field_config: ObjectFieldConfig, psnr_fields: int,
             views: int, res: int, samples: int) -> dict:
    """Step 3 for the sane-tokens arm: decoded vs original field, rendered against the analytic object."""
    runs = []
    for o in objects[:psnr_fields].tolist():
        row = int((fields["object_ids"] == o).nonzero()[0])
        obj = polycube(object_seed(manifest["settings"]["seed"], o))
        runs.append(decoded_psnr(arm.model, arm.tokenizer, arm.scales, fields["params"][row], obj, fields["quaternions"][row],
                                 field_config, views, res, samples, seed=o))
    mean = lambda k: sum(r[k] for r in runs) / len(runs)
    return {"decoded_psnr_drop_db": mean("original_psnr") - mean("decoded_psnr"), "original_psnr": mean("original_psnr"),
            "tokenized_psnr": mean("tokenized_psnr"), "decoded_psnr": mean("decoded_psnr"), "psnr_fields": len(runs),
            "render": {"res": res, "views": views, "samples_per_ray": samples, "supersample": 1,
                       "truth": "analytic polycube field, volume-rendered"},
            "hash_coverage": arm.tokenizer.coverage}
