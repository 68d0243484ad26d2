"""Pre-encoded latents: N training renders encoded once by the TinyVAE, in resumable safetensors shards.

Frame i is seen from `frame_pose(config, i)`, a pose drawn from a generator of its own seed
(`derived_seed(seed, i, POSE_TAG)`), so the set does not depend on the shard size, the worker count or the ranks
that made it; the held-out poses (`training.data.heldout_poses`) come from another generator and are never here.

On disk, DIR holds `dataset.json` (the manifest: settings, the VAE's identity, shard count) and
`shard_00000.safetensors`, ... Each shard holds `poses` [n, 5] and `latents` [n, 4, res/8, res/8] with a JSON record
in its metadata (VAE identity and source, scene, res, seeds, seconds). A rerun with the same settings and VAE resumes
the set (as `training.shards` says, which also fans the work out); one with other settings or another VAE is refused.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from renderer.camera import sample_poses
from renderer.errors import RedcubeError
from renderer.rasterizer import Rasterizer
from renderer.scene import Scene
from renderer.tinyvae import DOWNSCALE, TinyVAE
from training import shards
from training.distributed import Dist
from training.shards import derived_seed, shard_path
from training.vae import DEFAULT_SOURCE, check_latent_res, encode_frames, load_vae

MANIFEST = "dataset.json"
SHARD_FORMAT, SET_FORMAT, VERSION = "redcube-latent-shard", "redcube-latent-set", 1
REGENERATE = "rerun redcube encode-latents to regenerate it"
POSE_TAG = 5  # frame i's pose seed is derived_seed(seed, i, POSE_TAG)


@dataclass
class LatentSetConfig(shards.Sharded):
    frames: int
    """Training frames to render and encode."""
    res: int = 512
    """Side of the renders; the latents are (res/8)²."""
    shard_size: int = 16
    """Frames per shard file."""
    seed: int = 0
    """Seed of the set: every frame's pose seed derives from it."""
    vae: str = DEFAULT_SOURCE
    """TinyVAE that encodes the renders: 'scene' (shipped), a .safetensors or a TAESD directory."""
    scene: dict = field(default_factory=lambda: Scene().to_dict())
    """The scene config the frames are rendered from."""

    def __post_init__(self):
        if min(self.frames, self.shard_size) < 1:
            raise RedcubeError("encode-latents --frames and --shard-size must be positive whole numbers; fix the options.")
        check_latent_res(self.res)
        self.scene = as_json(self.scene)  # lists, not tuples: compares equal to a record read back

    @property
    def n_items(self) -> int:
        return self.frames

    def settings(self) -> dict:
        """Everything that decides the set's contents, as JSON (so it compares equal to what a manifest read back holds)."""
        return as_json(asdict(self))


def as_json(d: dict) -> dict:
    return json.loads(json.dumps(d))


def frame_pose(config: LatentSetConfig, i: int) -> torch.Tensor:
    """Training frame i's pose [5], from a generator of its own."""
    gen = torch.Generator().manual_seed(derived_seed(config.seed, i, POSE_TAG))
    return sample_poses(Scene.from_dict(config.scene), 1, gen)[0]


@functools.lru_cache(maxsize=2)
def _vae(source: str) -> TinyVAE:
    """One loaded TinyVAE per process and source (a process makes many shards)."""
    return load_vae(source)


def vae_record(source: str, vae: TinyVAE | None = None) -> dict:
    """The VAE's identity (name, weight hash, channels) and where it came from, as a latent checkpoint records it;
    `vae`: the one loaded from `source` (default: this process's)."""
    vae = vae if vae is not None else _vae(source)
    if vae.latent_channels != 4:
        raise RedcubeError(f"VAE {source!r} has {vae.latent_channels} latent channels, not 4; use a TAESD-layout TinyVAE.")
    return {**vae.identity(), "source": source}


# ---- one shard ---------------------------------------------------------------------------------------------
def make_shard(config: LatentSetConfig, out: Path, j: int) -> dict:
    """Render and encode the frames of shard j and write it atomically; returns {shard, frames, seconds, cpu_seconds}."""
    start, cpu = time.time(), time.process_time()
    frames = config.shard_items(j)
    poses = torch.stack([frame_pose(config, i) for i in frames])  # [n, 5]
    with Rasterizer(Scene.from_dict(config.scene)) as rast:
        rgb, _ = rast.render(poses.numpy(), config.res)  # [n, R, R, 3]
    latents = encode_frames(_vae(config.vae), rgb).permute(0, 3, 1, 2)  # [n, 4, R/8, R/8]
    seconds, cpu = time.time() - start, time.process_time() - cpu
    record = {"format": SHARD_FORMAT, "version": VERSION, "shard": j, "frames": [frames.start, frames.stop],
              "res": config.res, "latent_res": config.res // DOWNSCALE, "scene": config.scene, "settings": config.settings(),
              "vae": vae_record(config.vae), "seeds": {"set": config.seed, "poses": f"derived_seed(set, i, {POSE_TAG})"},
              "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2)}
    shards.write_shard(shard_path(out, j), {"poses": poses, "latents": latents}, record)
    return {"shard": j, "frames": len(frames), "seconds": seconds, "cpu_seconds": cpu}


def _make_shard_task(task: tuple) -> dict:
    """Worker-process entry point (spawn): one rasterizer thread and one torch thread, then one shard."""
    os.environ["LP_NUM_THREADS"] = "1"  # Mesa reads it at context creation
    torch.set_num_threads(1)
    return make_shard(*task)


def read_shard(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, record) of one latent shard, or one sentence when it is missing, empty, partial or not such a shard."""
    return shards.read_shard(path, SHARD_FORMAT, _whole, REGENERATE)


def _whole(tensors: dict, record: dict) -> bool:
    r = record["latent_res"]
    return (shards.rows_match(tensors, record["frames"][1] - record["frames"][0])
            and tensors["poses"].shape[1:] == (5,) and tensors["latents"].shape[1:] == (4, r, r))


def _read_own(config: LatentSetConfig, path: Path) -> None:
    """Read a shard back whole; one sentence when it was made with other settings than the set's."""
    record = read_shard(path)[1]
    if record["settings"] != config.settings():
        raise RedcubeError(f"shard {path} was made with other settings (differs in "
                           f"{shards.differs(record['settings'], config.settings())}); move it away or pass another --out.")


# ---- the whole set -----------------------------------------------------------------------------------------
def _manifest(config: LatentSetConfig) -> dict:
    return {"format": SET_FORMAT, "version": VERSION, "settings": config.settings(), "vae": vae_record(config.vae),
            "res": config.res, "latent_res": config.res // DOWNSCALE, "n_frames": config.frames, "n_shards": config.n_shards}


def check_manifest(config: LatentSetConfig, out: Path) -> None:
    """Refuse (one sentence) to add to a directory made with other settings or another VAE; nothing there is touched."""
    old = shards.read_manifest(out, MANIFEST, "--out")
    if old is None:
        return
    new = _manifest(config)
    if old.get("vae", {}).get("sha256") != new["vae"]["sha256"]:
        raise RedcubeError(f"{out} holds latents of TinyVAE {old.get('vae', {}).get('name')!r} (weights "
                           f"{old.get('vae', {}).get('sha256')}), not of {new['vae']['name']!r} (weights {new['vae']['sha256']}); "
                           "rerun with the VAE it was made with to resume it or pass another --out.")
    if old.get("settings") != new["settings"]:
        raise RedcubeError(f"{out} holds latents made with other settings (differs in "
                           f"{shards.differs(old.get('settings', {}), new['settings'])}); "
                           "rerun with the same settings to resume it or pass another --out.")


def generate(config: LatentSetConfig, out: Path, workers: int = 1, log: Callable[[str], None] = print,
             dist: Dist | None = None) -> dict:
    """Make every missing shard in `out` (this rank's share of them), `workers` processes at a time; returns a
    summary: shards made and skipped, frames made, frames per second of wall clock and per CPU second of the workers
    (what one core delivers when nothing else runs; the wall-clock rate counts a shared machine's contention)."""
    dist = dist or Dist()
    if workers < 1:
        raise RedcubeError("encode-latents --workers must be a positive whole number; fix the option.")
    mine = shards.my_shards(config.n_shards, dist)
    out = Path(out)
    check_manifest(config, out)
    if dist.main:
        shards.write_manifest(out, MANIFEST, _manifest(config))
    todo = shards.shards_to_make(out, mine, functools.partial(_read_own, config), REGENERATE, log)
    log(f"rank {dist.rank}: {len(mine) - len(todo)} of {len(mine)} shard(s) already done, {len(todo)} to make "
        f"with {workers} worker(s)")
    start, made = time.time(), []
    for rec in shards.run_tasks(make_shard, _make_shard_task, [(config, out, j) for j in todo], workers):
        made.append(rec)
        n = sum(r["frames"] for r in made)
        log(f"rank {dist.rank}: shard {rec['shard']} written ({len(made)}/{len(todo)}, {n} frames, "
            f"{n / max(time.time() - start, 1e-9):.2f} frames/s)")
    wall, n = time.time() - start, sum(r["frames"] for r in made)
    return {"out": str(out), "rank": dist.rank, "shards_made": len(made), "shards_skipped": len(mine) - len(todo),
            "frames_made": n, "seconds": round(wall, 1), "frames_per_s": round(n / wall, 3) if n else None,
            "frames_per_cpu_s": round(n / sum(r["cpu_seconds"] for r in made), 3) if n else None,
            "workers": workers}


def load_latents(out: Path, vae: dict, res: int, scene: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """poses [N, 5], latents [N, res/8, res/8, 4] (channels last, as the trainer's pixels) and the manifest of a finished
    set; one sentence when it is missing or partial, or was encoded by another VAE (`vae`: a `vae_record`), at another
    res or from another scene."""
    manifest = shards.read_manifest(out, MANIFEST, "--shards")
    if manifest is None or manifest.get("format") != SET_FORMAT:
        raise RedcubeError(f"{out} holds no latent {MANIFEST}; pass a directory written by redcube encode-latents.")
    got = manifest["vae"]
    if (got["sha256"], manifest["res"]) != (vae["sha256"], res):
        raise RedcubeError(f"{out} holds latents of TinyVAE {got['name']!r} (weights {got['sha256']}) at {manifest['res']}², "
                           f"but this run uses {vae['name']!r} (weights {vae['sha256']}) at {res}²; pass the --vae and --res "
                           "they were encoded with or encode them again into another directory.")
    if manifest["settings"]["scene"] != as_json(scene):
        raise RedcubeError(f"{out} holds latents of another scene than this run's; pass the --scene they were rendered "
                           "from or encode them again into another directory.")
    parts = [read_shard(shard_path(out, j))[0] for j in range(manifest["n_shards"])]
    return torch.cat([p["poses"] for p in parts]), torch.cat([p["latents"] for p in parts]).permute(0, 2, 3, 1), manifest
