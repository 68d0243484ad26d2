"""The NGP field data set of issue 7: objects x rotations, one fitted field each, in safetensors shards.

Field i belongs to object o = i // K and rotation k = i % K (K rotations per object). Object o is
`polycube(object_seed(seed, o))`; its rotation k is a uniform random quaternion of its own seed, and the field
is fitted (`training.ngp_fields.fit_field`, direct supervision on 3-D points) from a seed of its own, so a field
does not depend on the shard size, the worker count or the ranks that made it.

On disk, DIR holds `dataset.json` (the manifest: settings, field layout, shard count) and
`shard_00000.safetensors`, ... Each shard holds `params` [n, P] (flat vectors, `ObjectField.flat` order),
`quaternions` [n, 4], `object_ids`, `rotation_ids`, `field_ids` [n] and `fit_loss` [n], with a JSON record in
its metadata (layout, MLP shape, seeds, fit settings, seconds). Generation resumes (a rerun with the same settings
makes only the missing, empty or partial shards) and fans out over processes and ranks as `training.shards` says.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from renderer.errors import RedcubeError
from renderer.models.object_field import ObjectFieldConfig, field_layout
from renderer.polycubes import polycube
from renderer.quaternions import random_quaternions
from training import shards
from training.distributed import Dist
from training.ngp_fields import FitConfig, fit_field
from training.shards import derived_seed, shard_path

MANIFEST = "dataset.json"
SHARD_FORMAT, DATASET_FORMAT, VERSION = "redcube-ngp-shard", "redcube-ngp-dataset", 1
REGENERATE = "rerun redcube ngp-dataset to regenerate it"


@dataclass
class DatasetConfig(shards.Sharded):
    objects: int
    """Distinct polycubes."""
    rotations: int
    """Fields (rotations) per object."""
    shard_size: int = 8
    """Fields per shard file."""
    seed: int = 0
    """Seed of the whole data set: objects, rotations and fits derive their seeds from it."""
    fit: FitConfig = field(default_factory=FitConfig)
    """How each field is fitted."""
    field: ObjectFieldConfig = field(default_factory=ObjectFieldConfig)
    """The field architecture (hash-grid layout and MLP)."""
    init_seed: int | None = 0
    """Every field starts from the same initial weights, drawn from this seed (not the data set's: data sets of other
    objects start where this one did); only its points are its own. Fields fitted from one start keep their MLP
    neurons and hash features in corresponding roles, so two fields' weights compare entry by entry (weight-space
    learners are trained on such populations). None gives each field its own random start, as seed 004's data had."""

    def __post_init__(self):
        if isinstance(self.fit, dict):
            self.fit = FitConfig(**self.fit)
        if isinstance(self.field, dict):
            self.field = ObjectFieldConfig(**self.field)
        if min(self.objects, self.rotations, self.shard_size) < 1:
            raise RedcubeError("ngp-dataset --objects, --rotations and --shard-size must be positive whole numbers; fix the options.")

    @property
    def n_items(self) -> int:
        """Fields: one per object and rotation."""
        return self.objects * self.rotations

    def settings(self) -> dict:
        """Everything that decides the data set's contents, as JSON (the hash-grid backend does not)."""
        d = asdict(self)
        d["field"]["grid"].pop("backend")
        return d


def object_seed(seed: int, o: int) -> int:
    return derived_seed(seed, o, 0)


def field_rotation(seed: int, o: int, k: int) -> torch.Tensor:
    return random_quaternions(1, derived_seed(seed, o, k, 1))[0]


def fit_seed(seed: int, o: int, k: int) -> int:
    return derived_seed(seed, o, k, 2)


def start_seed(config: "DatasetConfig", o: int, k: int) -> int:
    return fit_seed(config.seed, o, k) if config.init_seed is None else derived_seed(config.init_seed, 3)


# ---- one shard ---------------------------------------------------------------------------------------------
def make_shard(config: DatasetConfig, out: Path, j: int, threads: int = 1) -> dict:
    """Fit the fields of shard j and write it atomically; returns {shard, fields, seconds}."""
    torch.set_num_threads(threads)
    start, cpu = time.time(), time.process_time()
    rows = {"params": [], "quaternions": [], "object_ids": [], "rotation_ids": [], "field_ids": [], "fit_loss": []}
    fields = config.shard_items(j)
    for i in fields:
        o, k = divmod(i, config.rotations)
        q = field_rotation(config.seed, o, k)
        f, rec = fit_field(polycube(object_seed(config.seed, o)), q, config.fit, config.field, seed=fit_seed(config.seed, o, k),
                           init_seed=start_seed(config, o, k))
        for name, value in (("params", f.flat()), ("quaternions", q), ("object_ids", o), ("rotation_ids", k), ("field_ids", i),
                            ("fit_loss", rec["last"]["loss"])):
            rows[name].append(torch.as_tensor(value))
    tensors = {k: torch.stack(v).contiguous() for k, v in rows.items()}
    seconds, cpu = time.time() - start, time.process_time() - cpu
    record = {"format": SHARD_FORMAT, "version": VERSION, "shard": j, "fields": [fields.start, fields.stop],
              "layout": field_layout(config.field), "settings": config.settings(),
              "object_seeds": {str(o): object_seed(config.seed, o) for o in sorted(set(tensors["object_ids"].tolist()))},
              "fit_seconds": round(seconds, 2), "fit_cpu_seconds": round(cpu, 2), "threads": threads}
    shards.write_shard(shard_path(out, j), tensors, record)
    return {"shard": j, "fields": len(fields), "seconds": seconds, "cpu_seconds": cpu}


def _make_shard_task(task: tuple) -> dict:
    """Worker-process entry point (spawn): make one shard."""
    return make_shard(*task)


def read_shard(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, record) of one shard, or one sentence when it is missing, empty, partial or not a shard."""
    return shards.read_shard(path, SHARD_FORMAT, _whole, REGENERATE)


def _whole(tensors: dict, record: dict) -> bool:
    return (shards.rows_match(tensors, record["fields"][1] - record["fields"][0])
            and tensors["params"].shape[1] == record["layout"]["n_params"])


def check_layout(found: dict, expected: dict, where: str) -> None:
    """One sentence when fields laid out as `found` are read where `expected` is needed."""
    if found != expected:
        diff = shards.differs(found, expected)
        raise RedcubeError(f"{where} holds NGP fields with a different hash-grid/MLP layout (differs in {diff}); "
                           "use fields made with the same field settings or regenerate them into another directory.")


# ---- the whole data set ------------------------------------------------------------------------------------
def check_manifest(config: DatasetConfig, out: Path) -> None:
    """Refuse (one sentence) to add to a directory made with other settings; nothing there is touched."""
    old = shards.read_manifest(out, MANIFEST, "--out")
    if old is None:
        return
    check_layout(old.get("layout", {}), field_layout(config.field), str(out))
    if old.get("settings") != config.settings():
        diff = shards.differs(old.get("settings", {}), config.settings())
        raise RedcubeError(f"{out} holds an NGP data set made with other settings (differs in {diff}); "
                           "rerun with the same settings to resume it or pass another --out.")


def write_manifest(config: DatasetConfig, out: Path) -> None:
    record = {"format": DATASET_FORMAT, "version": VERSION, "settings": config.settings(), "layout": field_layout(config.field),
              "n_fields": config.n_items, "n_shards": config.n_shards,
              "fitting": "direct supervision on 3-D points of the analytic polycube field (training.ngp_fields)"}
    shards.write_manifest(out, MANIFEST, record)


def generate(config: DatasetConfig, out: Path, workers: int = 1, threads: int = 1, log: Callable[[str], None] = print,
             dist: Dist | None = None) -> dict:
    """Make every missing shard of the data set in `out` (this rank's share of them), `workers` processes at a time.
    Returns a summary: shards made and skipped, fields per wall-clock minute, and fields per CPU minute of the fits
    (what one core delivers when nothing else runs; the wall-clock rate counts a shared machine's contention)."""
    dist = dist or Dist()
    if workers < 1 or threads < 1:
        raise RedcubeError("ngp-dataset --workers and --threads must be positive whole numbers; fix the options.")
    mine = shards.my_shards(config.n_shards, dist)
    out = Path(out)
    check_manifest(config, out)
    if dist.main:
        write_manifest(config, out)
    layout = field_layout(config.field)
    todo = shards.shards_to_make(out, mine, lambda path: check_layout(read_shard(path)[1]["layout"], layout, str(path)),
                                 REGENERATE, log)
    log(f"rank {dist.rank}: {len(mine) - len(todo)} of {len(mine)} shard(s) already done, {len(todo)} to make "
        f"with {workers} worker(s)")
    start, made = time.time(), []
    tasks = [(config, out, j, threads) for j in todo]
    for rec in shards.run_tasks(make_shard, _make_shard_task, tasks, workers):
        made.append(rec)
        n = sum(r["fields"] for r in made)
        log(f"rank {dist.rank}: shard {rec['shard']} written ({len(made)}/{len(todo)}, {n} fields, "
            f"{n / max(time.time() - start, 1e-9) * 60:.1f} fields/min)")
    wall = time.time() - start
    fields = sum(r["fields"] for r in made)
    return {"out": str(out), "rank": dist.rank, "shards_made": len(made), "shards_skipped": len(mine) - len(todo),
            "fields_made": fields, "seconds": round(wall, 1),
            "fields_per_minute": round(fields / wall * 60, 2) if fields else None,
            "fields_per_cpu_minute": round(fields / sum(r["cpu_seconds"] for r in made) * 60, 2) if fields else None,
            "workers": workers, "threads": threads}


def load_fields(out: Path, layout: dict | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Every field of a finished data set, concatenated over shards, and the manifest; one sentence for a missing,
    partial or differently laid out shard (checked against `layout` when given)."""
    manifest = shards.read_manifest(out, MANIFEST, "--data")
    if manifest is None:
        raise RedcubeError(f"{out} holds no {MANIFEST}; pass a directory written by redcube ngp-dataset.")
    if layout is not None:
        check_layout(manifest["layout"], layout, str(out))
    parts = []
    for j in range(manifest["n_shards"]):
        tensors, record = read_shard(shard_path(out, j))
        check_layout(record["layout"], manifest["layout"], str(shard_path(out, j)))
        parts.append(tensors)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, manifest
