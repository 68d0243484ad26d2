"""The one checkpoint format: `NAME.safetensors` (tensors + the record in its metadata) and `NAME.json` beside it.

The record is plain JSON: model kind and config, scene config, training config, step, metrics, the
optimizer's hyperparameters. Tensors are the model's weights (`model.*`), the optimizer's state
(`optim.*`) and RNG state (`rng.*`). No pickle anywhere. Writes go to a temp file and are renamed
into place, so a crash mid-write never damages the previous checkpoint. The safetensors metadata is
authoritative; the JSON copy is for people and tools.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from renderer.errors import RedcubeError
from renderer.models import build_model
from renderer.scene import Scene

FORMAT = "redcube-checkpoint"
VERSION = 1
DEFAULT_NAME = "checkpoint.safetensors"


@dataclass
class Checkpoint:
    record: dict
    """The JSON record: format, model {kind, config}, scene, train, step, metrics, optimizer."""
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    """Every tensor in the file, by name."""
    path: Path | None = None
    """The file it was read from (for messages)."""

    @property
    def kind(self) -> str:
        return self.record["model"]["kind"]

    @property
    def scene(self) -> Scene:
        return Scene.from_dict(self.record["scene"])

    @property
    def step(self) -> int:
        return int(self.record.get("step", 0))

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def build_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The network with its trained weights, or one clear sentence when the file does not fit it."""
        model = build_model(self.kind, self.record["model"]["config"], self.scene)
        state = self.prefixed("model.")
        ours = model.state_dict()
        missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
        shapes = [k for k in ours if k in state and ours[k].shape != state[k].shape]
        if missing or unexpected or shapes:
            raise RedcubeError(
                f"checkpoint weights do not match a {self.kind} with the recorded config "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {shapes[:3]}); "
                "the file is damaged or was written by another version: retrain or pick another checkpoint."
            )
        model.load_state_dict(state)
        return model.to(device)


def resolve(path: str | Path) -> Path:
    """A checkpoint path: the .safetensors file itself or a run directory holding checkpoint.safetensors."""
    p = Path(path)
    if p.is_dir():
        p = p / DEFAULT_NAME
    elif p.suffix == ".json":
        p = p.with_suffix(".safetensors")
    return p


def atomic_write(path: Path, write) -> None:
    """Call write(tmp) on a temp file beside `path`, then rename it into place: a failed write keeps the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, model: nn.Module, scene: Scene, *, step: int = 0, metrics: dict | None = None,
                    train: dict | None = None, optimizer: torch.optim.Optimizer | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None, extra: dict | None = None) -> Path:
    """Write model (+ optimizer state) atomically; returns the .safetensors path."""
    path = resolve(path)
    module = getattr(model, "_orig_mod", model)  # never leak torch.compile's wrapper into the file
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    config = asdict(module.config) if is_dataclass(module.config) else module.config
    record = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"kind": module.kind, "config": config,
                  "parameters": sum(p.numel() for p in module.parameters()),
                  **({"backend": module.backend} if hasattr(module, "backend") else {})},
        "scene": scene.to_dict(),
        "train": train or {},
        "step": int(step),
        "metrics": metrics or {},
        **(extra or {}),
    }
    if optimizer is not None:
        groups, state = _optimizer_state(optimizer)
        record["optimizer"] = {"type": type(optimizer).__name__, "param_groups": groups}
        tensors.update(state)
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra_tensors or {}).items()})
    text = json.dumps(record, indent=2)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"redcube": text}))
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text + "\n"))
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint (CPU tensors). Any problem is one clear sentence; the file is never modified."""
    p = resolve(path)
    if not p.exists():
        raise RedcubeError(f"checkpoint {p} does not exist; pass a .safetensors file or a run directory that holds {DEFAULT_NAME}.")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise RedcubeError(f"{p} is not a readable safetensors checkpoint ({type(e).__name__}); it may be truncated or corrupt: pick another file or retrain.") from None
    try:
        record = json.loads(meta["redcube"])
        assert record.get("format") == FORMAT and "kind" in record["model"]
    except Exception:
        raise RedcubeError(f"{p} is a safetensors file but not a redcube checkpoint (no redcube record in its metadata); pass a checkpoint written by redcube.") from None
    version = record.get("version", 0)
    if isinstance(version, (int, float)) and version > VERSION:
        raise RedcubeError(f"{p} was written by a newer redcube (format version {record['version']}); upgrade redcube to load it.")
    check_record(p, record)
    return Checkpoint(record, tensors, p)


@dataclass(frozen=True)
class Loader:
    """How a checkpoint of one kind becomes what it holds."""

    where: str
    """'module:function' (or 'module:Class.method') taking the Checkpoint."""
    what: str
    """What the kind is, for the sentence that refuses another kind."""
    made_by: str
    """The command that writes it."""
    needs: tuple[str, ...] = ()
    """Tensors the file must hold beside the model's."""


LOADERS = {
    "tinyvae": Loader("training.vae:vae_from", "a TinyVAE", "redcube train vae (or pass a TAESD directory, or 'scene')"),
    "mnif": Loader("training.mnif.autodecode:mnif_from", "an mNIF", "redcube train mnif (train-mnif)", ("latents",)),
    "latent-ddpm": Loader("training.mnif.diffusion:LatentDiffusion.from_checkpoint", "a latent diffusion model",
                          "redcube train mnif (its diffusion.safetensors)", ("latent_mean", "latent_std")),
    "weightspace": Loader("training.weightspace.train:weightspace_from", "a weight-space autoencoder",
                          "redcube train weightspace (train-weightspace)", ("tokens.points", "tokens.scales")),
    "weightspace-grid": Loader("training.weightspace.grid_train:grid_from", "the grid arm",
                               "redcube train weightspace-grid (train-weightspace --arm grid)"),
}
"""The one registry from a checkpoint's kind to its loader; the networks of renderer.models need none (they are
`Checkpoint.build_model`)."""


def load(path: str | Path, kind: str | None = None):
    """What the checkpoint at `path` holds, through its kind's loader; with `kind`, any other kind is one sentence."""
    ckpt = load_checkpoint(path)
    want = LOADERS.get(kind) if kind else None
    if want and (ckpt.kind != kind or any(t not in ckpt.tensors for t in want.needs)):
        raise RedcubeError(f"{path} holds a {ckpt.kind} checkpoint, not {want.what}; pass one written by {want.made_by}.")
    if ckpt.kind not in LOADERS:
        return ckpt.build_model().eval()
    module, name = LOADERS[ckpt.kind].where.split(":")
    fn = importlib.import_module(module)
    for attr in name.split("."):
        fn = getattr(fn, attr)
    return fn(ckpt)


def check_record(p: Path, record: dict) -> None:
    """The record's parts have the types and values the loaders rely on (a hand-edited record is one sentence)."""
    from renderer.models import MODELS, model_config

    def bad(what: str) -> RedcubeError:
        return RedcubeError(f"{p} has a damaged record ({what}); pick another checkpoint or retrain.")

    model = record["model"]
    if not isinstance(model, dict) or not isinstance(model.get("kind"), str) or not isinstance(model.get("config", {}), dict):
        raise bad("its model entry is not a kind and a config")
    step = record.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise bad(f"step {step!r} is not a whole number >= 0")
    for part in ("scene", "train", "metrics"):
        if part in record and not isinstance(record[part], dict):
            raise bad(f"its {part} entry is not a mapping")
    if not isinstance(record.get("scene"), dict):
        raise bad("it records no scene")
    try:
        Scene.from_dict(record["scene"])
        if model["kind"] in MODELS:  # other kinds (the TinyVAE, weight-space models) check their own configs
            model_config(model["kind"], model.get("config", {}))
    except RedcubeError as e:
        raise bad(str(e).rstrip(".")) from None


def _optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[list[dict], dict[str, torch.Tensor]]:
    sd = optimizer.state_dict()  # its param_groups are fresh dicts of plain values
    tensors = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            t = val if torch.is_tensor(val) else torch.tensor(val)
            tensors[f"optim.{idx}.{key}"] = t.detach().cpu().contiguous()
    return sd["param_groups"], tensors


def restore_optimizer(optimizer: torch.optim.Optimizer, ckpt: Checkpoint) -> None:
    """Load the optimizer state saved by `save_checkpoint` into `optimizer` (same parameter order)."""
    info = ckpt.record.get("optimizer")
    if info is None:
        raise RedcubeError("the checkpoint holds no optimizer state, so training cannot resume from it; start a new run instead.")
    if info["type"] != type(optimizer).__name__:
        raise RedcubeError(f"the checkpoint's optimizer is {info['type']}, not {type(optimizer).__name__}; resume with the same optimizer.")
    state: dict[int, dict] = {}
    for name, t in ckpt.prefixed("optim.").items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = t
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


LIVE_EXTRA = "extra."
LIVE_NAME = "live.safetensors"
"""A training run's newest weights alone, for a viewer that follows the run (beside its checkpoint)."""


def save_live_weights(path: str | Path, model: nn.Module, step: int, extra: dict[str, torch.Tensor] | None = None) -> None:
    """The model's state (no optimizer, no record beyond kind and step) and `extra` tensors a viewer needs (as
    `extra.NAME`), written atomically: a few milliseconds, so a trainer can hand its weights to the app every
    fraction of a second."""
    module = getattr(model, "_orig_mod", model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tensors.update({f"{LIVE_EXTRA}{k}": v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
    meta = json.dumps({"kind": module.kind, "step": int(step)})
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata={"redcube-live": meta}))


def load_live_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str, int]:
    """(state dict, model kind, step) of a file `save_live_weights` wrote; one sentence for anything else. Extra
    tensors stay in the state under `extra.NAME`: `split_live_extra` takes them out."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["redcube-live"])
            return {k: f.get_tensor(k) for k in f.keys()}, str(meta["kind"]), int(meta["step"])
    except Exception as e:
        raise RedcubeError(f"{path} is not a redcube live-weights file ({type(e).__name__}); "
                           "it is written by a running training and read by the app alone.") from None


def split_live_extra(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the model's state, the extra tensors by name) of a live-weights state."""
    extra = {k[len(LIVE_EXTRA):]: v for k, v in state.items() if k.startswith(LIVE_EXTRA)}
    return {k: v for k, v in state.items() if not k.startswith(LIVE_EXTRA)}, extra
