"""The Rotations tab's state, without GUI calls (issue 7 item 4, issue 19 item 3): a weight-space autoencoder, the NGP
field data set it was trained on, the picked object, rotation and reference rotation, and what each arm says about them.

Arms (`training.weightspace.arms`): the autoencoder itself (sane-tokens), the grid arm when its checkpoint is there
(grid-axes, default `assets/weightspace/grid.safetensors`), its input without the net (feature-axes) and the
function-space arm (probe-axes); the last two need no checkpoint.
Every arm reads every field once while loading; the picked arm's rotation is the one the renders undo.

Loading (on a background thread, with progress) encodes every field once: tokens / scales -> encode -> keep only
the [POS] latents (what the rotation head reads) and the 2-D PCA of the NT-Xent embeddings, not the whole latent
sequence (a thousand fields' full latents would be hundreds of MB).

Rotations follow `training.weightspace.losses.relative_rotation`: a field of rotation q holds the canonical object
rotated by q about the box centre c, and the relative rotation from the reference field (q_ref) to the selected
one (q_sel) is q_rel = q_sel * q_ref^-1, what the model's head predicts from (z_ref, z_sel). Undoing it evaluates
the selected field at c + R(q_rel) (x - c), which is the reference field wherever both fit their object
(`undo_rotation`). Every bad input is one sentence (a RedcubeError) and leaves the loaded state as it was.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from app.gui.training_session import ASSETS
from app.gui.settings import apply_or_keep
from app.gui.tab_parts import LoadingSession
from renderer.errors import RedcubeError
from renderer.models.object_field import ObjectField, ObjectFieldConfig
from renderer.quaternions import angle_between, canonical, matrix
from renderer.scene import Scene
from training.weightspace.arms import FeatureArm, GridArm, ProbeArm, SaneArm
from training.weightspace.axes import quaternion_of
from training.weightspace.losses import relative_rotation

DEFAULT_DIR = ASSETS / "weightspace"
DEFAULT_CHECKPOINT = DEFAULT_DIR / "checkpoint.safetensors"
DEFAULT_FIELDS = DEFAULT_DIR / "fields"
DEFAULT_GRID = DEFAULT_DIR / "grid.safetensors"
ENCODE_BATCH = 16
"""Fields per encoder call while loading (bounds the loader thread's memory)."""
COLOR_BY = ("object", "rotation")


@dataclass
class LoadedRotations:
    tokenizer: object
    fields: dict[str, torch.Tensor]
    """`training.ngp_dataset.load_fields` tensors: params [N, P], quaternions [N, 4], object_ids, rotation_ids [N]."""
    field_config: ObjectFieldConfig
    pca: torch.Tensor
    """[N, 2]: the first two principal components of each field's NT-Xent embedding, L2-normalised (the contrastive
    loss compares directions)."""
    heldout: set[int]
    """Objects training never saw (`training.weightspace.eval.unseen_objects`)."""
    checkpoint: Path
    data: Path
    step: int
    arms: dict
    """{name: (arm, per-field readings)}: every arm that loaded, in `training.weightspace.arms.READS` order."""

    @property
    def objects(self) -> list[int]:
        return sorted(set(self.fields["object_ids"].tolist()))

    def rows_of(self, o: int) -> torch.Tensor:
        """Data-set rows of object o's fields, in rotation order."""
        rows = (self.fields["object_ids"] == o).nonzero().squeeze(1)
        return rows[self.fields["rotation_ids"][rows].argsort()]


def pca2(x: torch.Tensor) -> torch.Tensor:
    """[N, K] -> [N, 2]: projections on the first two principal axes (SVD of the centred rows; zeros pad N < 2)."""
    centred = x - x.mean(0)
    _, _, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    out = (centred.double() @ vh[:2].T).float()
    return F.pad(out, (0, 2 - out.shape[1]))


@torch.no_grad()
def encode_all(model, tokenizer, scales: torch.Tensor, params: torch.Tensor, progress=None) -> tuple[torch.Tensor, torch.Tensor]:
    """([POS] latents [N, P, L], normalised embeddings [N, K]) of every field vector [N, P_params], in batches."""
    pos, emb = [], []
    for i in range(0, len(params), ENCODE_BATCH):
        z = model.encode(tokenizer.tokenize(params[i:i + ENCODE_BATCH]) / scales)
        pos.append(z[:, model.is_pos])
        emb.append(F.normalize(model.embedding(z), dim=1))
        if progress:
            progress(min(i + ENCODE_BATCH, len(params)), len(params))
    return torch.cat(pos), torch.cat(emb)


def read_rotations(checkpoint: str | Path, data: str | Path, progress=None,
                   default: tuple[Path, Path] = (DEFAULT_CHECKPOINT, DEFAULT_FIELDS), grid: str | Path | None = None,
                   default_grid: Path = DEFAULT_GRID) -> LoadedRotations:
    """A weight-space checkpoint and its field data set, every field encoded and read by every arm; one sentence for a
    bad pair or a grid-arm checkpoint that does not fit (the default grid checkpoint may be absent: no grid arm then)."""
    from training.ngp_dataset import check_layout, load_fields
    from training.weightspace.eval import unseen_objects

    checkpoint, data = Path(checkpoint), Path(data)
    if (checkpoint, data) == tuple(default) and not (checkpoint.exists() and data.is_dir()):
        raise RedcubeError(f"no weight-space model is shipped in {checkpoint.parent} yet ({checkpoint.name} and "
                           f"{data.name}/); train one with redcube train-weightspace, or enter a checkpoint and its "
                           "data set above and press Load.")
    if not data.is_dir():
        raise RedcubeError(f"the field data set {data} is not a directory; pass the directory redcube ngp-dataset wrote.")
    sane = SaneArm(checkpoint)
    fields, manifest = load_fields(data, sane.tokenizer.layout)  # another layout than the tokenizer's: one sentence
    field_config = ObjectFieldConfig(**manifest["settings"]["field"])
    pos, emb = encode_all(sane.model, sane.tokenizer, sane.scales, fields["params"], progress)
    arms = {sane.name: (sane, [{"pos": p} for p in pos])}
    grid_arm = load_grid_arm(grid, default_grid)
    if grid_arm is not None:
        check_layout(manifest["layout"], grid_arm.layout, str(data))
        arms[grid_arm.name] = (grid_arm, grid_arm.read(fields["params"]))
    for arm in (FeatureArm(manifest["layout"]), ProbeArm(field_config)):  # need no checkpoint
        arms[arm.name] = (arm, arm.read(fields["params"]))
    try:
        heldout = set(unseen_objects(fields, manifest, sane.record).tolist())
    except RedcubeError:  # it holds out more objects than this data set has: not its training data, no split to show
        heldout = set()
    return LoadedRotations(sane.tokenizer, fields, field_config, pca2(emb), heldout, checkpoint, data,
                           int(sane.record.get("step", 0)), arms)


def load_grid_arm(grid: str | Path | None, default_grid: Path):
    """The grid arm of checkpoint `grid`, or None when no path is given or the default one is absent."""
    if not grid or (Path(grid) == default_grid and not default_grid.exists()):
        return None
    if not Path(grid).exists():
        raise RedcubeError(f"the grid-arm checkpoint {grid} does not exist; clear that input or pass a file written by "
                           "redcube train-weightspace --arm grid.")
    return GridArm(Path(grid))


def axis_angle(q: torch.Tensor) -> tuple[tuple[float, float, float], float]:
    """Unit axis and angle (deg, in [0, 180]) of rotation q [4]; the axis of a zero rotation is reported as +x."""
    q = canonical(q / q.norm())
    v = q[1:]
    s = float(v.norm())
    axis = (v / s).tolist() if s > 1e-8 else [1.0, 0.0, 0.0]
    return tuple(axis), math.degrees(2 * math.atan2(s, float(q[0])))


def undo_rotation(field_fn, q_rel: torch.Tensor, center, box):
    """The field `points -> (sigma, rgb)` seen after undoing rotation q_rel about `center`: field_fn at
    c + R(q_rel) (x - c). Points whose image leaves the box are empty (the field knows nothing there)."""
    rot = matrix(q_rel / q_rel.norm()).float()
    c = torch.tensor(center, dtype=torch.float32)
    lo, hi = (torch.tensor(v, dtype=torch.float32) for v in box)

    def field(points):
        y = (points - c) @ rot.T + c
        sigma, rgb = field_fn(y)
        inside = ((y >= lo) & (y <= hi)).all(-1)
        return sigma * inside.to(sigma.dtype), rgb
    return field


class RotationsSession(LoadingSession):
    def __init__(self, scene: Scene | None = None, checkpoint: Path = DEFAULT_CHECKPOINT, data: Path = DEFAULT_FIELDS,
                 grid: Path = DEFAULT_GRID):
        super().__init__()
        self.scene = scene or Scene()
        self.default = (Path(checkpoint), Path(data))
        self.default_grid = Path(grid)
        self.checkpoint, self.data, self.grid = str(checkpoint), str(data), str(grid)
        """The path inputs' text (what Load reads)."""
        self.arm = "grid-axes"
        """The arm whose rotation the renders undo (the grid arm when it loaded, else the autoencoder)."""
        self.loaded: LoadedRotations | None = None
        self.object = self.rotation = self.reference = 0
        self.color_by = COLOR_BY[0]
        self.yaw_deg = 35.0
        self._lock = threading.RLock()
        """Held while a load swaps the pair and resets the selection, and while the GUI thread reads them together."""
        self._prediction: tuple[int, dict] | None = None

    # -- loading -------------------------------------------------------------------------------
    def load(self, checkpoint: str | Path | None = None, data: str | Path | None = None, progress=None) -> str:
        """Load a checkpoint and its data set (default: the path inputs); on an error the loaded pair stays."""
        loaded = read_rotations(checkpoint or self.checkpoint, data or self.data, progress, self.default, self.grid, self.default_grid)
        with self._lock:
            self.loaded = loaded
            self.problem = ""
            if self.arm not in loaded.arms:
                self.arm = "grid-axes" if "grid-axes" in loaded.arms else "sane-tokens"
            self._pick(loaded.objects[0], None)
            note = self._apply_remembered(loaded)
        n, objs = len(loaded.fields["params"]), len(loaded.objects)
        return (f"loaded weight-space model {loaded.checkpoint.name} (step {loaded.step}), arms {', '.join(loaded.arms)} and "
                f"{n} fields of {objs} objects from {loaded.data}" + note)

    def load_async(self, done) -> None:
        """Load the path inputs' pair on a short thread, `loading` saying (fields encoded, of); done(text, level) with
        the outcome."""
        if self.loading is not None:
            raise RedcubeError("a weight-space model is already loading; wait for it to finish.")

        def load():
            torch.set_num_threads(1)  # per thread: the GUI and other work keep the rest of the machine
            done(self.load(progress=lambda i, n: setattr(self, "loading", (i, n))), "info")

        self._in_background("redcube-rotations-load", load, done, (0, 0), self.checkpoint, "pick another checkpoint")

    def empty(self) -> bool:
        return self.loaded is None

    # -- remembered between launches -----------------------------------------------------------
    def choices(self) -> dict:
        """What the settings file keeps: the loaded pair and its selection; before any load, the path inputs and the
        last launch's selection as they were."""
        out = {"yaw_deg": self.yaw_deg, "color_by": self.color_by}
        m = self.loaded
        if m is None:
            return {**out, "checkpoint": self.checkpoint, "data": self.data, **self._remembered}
        return {**out, "checkpoint": str(m.checkpoint), "data": str(m.data),
                "object": self.object, "rotation": self.rotation, "reference": self.reference}

    def restore(self, d: dict) -> str | None:
        """Take the last launch's choices (at start, before the panel is built, so its inputs show them). A value that
        does not fit is dropped for the default; a pair that is gone is the one thing said (an info message, else None)."""
        apply_or_keep(lambda: self.set_yaw(d.get("yaw_deg", self.yaw_deg)),
                      lambda: self.set_color_by(d.get("color_by", self.color_by)))
        ckpt, data = d.get("checkpoint"), d.get("data")
        if not (isinstance(ckpt, str) and isinstance(data, str)):
            return None
        if not (Path(ckpt).is_file() and Path(data).is_dir()):
            return None if (Path(ckpt), Path(data)) == self.default else \
                f"the Rotations tab's last checkpoint {ckpt} or its data set is gone; it opens the shipped pair."
        self.checkpoint, self.data = ckpt, data
        picked = {k: d[k] for k in ("object", "rotation", "reference") if type(d.get(k)) is int}
        self._remembered = {"checkpoint": ckpt, "data": data, **picked} if len(picked) == 3 else {}
        return None

    def _apply_remembered(self, m: LoadedRotations) -> str:
        """On the first load: the remembered selection if this is the remembered pair and it fits; else a short note."""
        r, self._remembered = self._remembered, {}
        if not r or (Path(r["checkpoint"]), Path(r["data"])) != (m.checkpoint, m.data):
            return ""
        o, k, ref = r["object"], r["rotation"], r["reference"]
        n = len(m.rows_of(o)) if o in m.objects else 0
        if not (0 <= k < n and 0 <= ref < n):
            return f"; the remembered object {o}, rotation {k}, reference {ref} is not in it, so object {self.object} is shown"
        self.object, self.rotation, self.reference = o, k, ref
        self.version += 1
        return ""

    def _need(self) -> LoadedRotations:
        if self.loaded is None:
            raise RedcubeError("no weight-space model is loaded; enter a checkpoint and its field data set and press Load.")
        return self.loaded

    # -- selection -----------------------------------------------------------------------------
    def _pick(self, o: int, k: int | None) -> None:
        """Object o; its rotation k (default: its second, so there is a rotation to predict) against rotation 0."""
        n = len(self.loaded.rows_of(o))
        self.object, self.reference = o, 0
        self.rotation = min(1, n - 1) if k is None else k
        self.version += 1

    def set_object(self, o: int) -> None:
        m = self._need()
        if o not in m.objects:
            raise RedcubeError(f"object {o!r} is not in this data set; choose one of {m.objects[0]} to {m.objects[-1]}.")
        self._pick(int(o), None)

    def _check_rotation(self, k, what: str) -> int:
        n = len(self._need().rows_of(self.object))
        if not (isinstance(k, int) and 0 <= k < n):
            raise RedcubeError(f"{what} {k!r} is out of range; object {self.object} has rotations 0 to {n - 1}.")
        return k

    def set_rotation(self, k: int) -> None:
        self.rotation = self._check_rotation(k, "rotation")
        self.version += 1

    def set_reference(self, k: int) -> None:
        self.reference = self._check_rotation(k, "reference rotation")
        self.version += 1

    def set_color_by(self, mode: str) -> None:
        if mode not in COLOR_BY:
            raise RedcubeError(f"cannot colour the embeddings by {mode!r}; choose one of {', '.join(COLOR_BY)}.")
        self.color_by = mode

    def set_arm(self, name: str) -> None:
        arms = list(self._need().arms)
        if name not in arms:
            raise RedcubeError(f"there is no arm {name!r} loaded; choose one of {', '.join(arms)}.")
        self.arm = name
        self.version += 1

    def set_yaw(self, deg: float) -> None:
        if not (isinstance(deg, (int, float)) and -360 <= deg <= 360):
            raise RedcubeError(f"camera yaw {deg!r} is out of range; choose degrees from -360 to 360.")
        self.yaw_deg = float(deg)
        self.version += 1

    def rows(self) -> tuple[int, int]:
        """Data-set rows of (the selected field, the reference field)."""
        with self._lock:
            rows = self._need().rows_of(self.object)
            return int(rows[self.rotation]), int(rows[self.reference])

    # -- what the model says ---------------------------------------------------------------------
    @torch.no_grad()
    def prediction(self) -> dict:
        """Predicted and true relative rotation from the reference field to the selected one (quaternions, axes,
        angles in deg) and the geodesic error (deg) between them. Cheap (one head call), cached per version."""
        with self._lock:  # not between a new pair and its reset selection
            m = self._need()
            if self._prediction is not None and self._prediction[0] == (self.version, id(m)):
                return self._prediction[1]
            sel, ref = self.rows()
            q = m.fields["quaternions"]
            true = canonical(relative_rotation(q[ref], q[sel]))
            arms = {}
            for name, (arm, readings) in m.arms.items():  # each arm: reference field -> selected field
                pred = quaternion_of(arm.rotation(readings[ref], readings[sel]))
                arms[name] = {"pred": pred, "axis_angle": axis_angle(pred),
                              "error_deg": float(torch.rad2deg(angle_between(true, pred)))}
            picked = arms[self.arm]
            out = {"pred": picked["pred"], "true": true, "pred_axis_angle": picked["axis_angle"],
                   "true_axis_angle": axis_angle(true), "error_deg": picked["error_deg"], "rows": (sel, ref),
                   "arm": self.arm, "arms": arms}
            self._prediction = ((self.version, id(m)), out)
            return out

    def describe(self) -> str:
        """The rotation table: the true rotation, then each arm's prediction (axis, angle) and geodesic error in degrees;
        ">" marks the arm the renders undo. Short lines: the side panel is narrow."""
        p = self.prediction()
        axis = lambda aa: f"({aa[0][0]:+.2f},{aa[0][1]:+.2f},{aa[0][2]:+.2f}) {aa[1]:6.1f}"
        rows = [f"  {'':<12} {'axis':<19} {'angle':>6} {'error':>6}", f"  {'true':<12} {axis(p['true_axis_angle'])}"]
        for name, a in p["arms"].items():
            rows.append(f"{'>' if name == p['arm'] else ' '} {name:<12} {axis(a['axis_angle'])} {a['error_deg']:6.1f}")
        return "\n".join(rows)

    def colors(self) -> torch.Tensor:
        """What each field's PCA point is coloured by: its object id, or its rotation's angle (deg) from the identity."""
        m = self._need()
        if self.color_by == "object":
            return m.fields["object_ids"].float()
        q = m.fields["quaternions"]
        return torch.rad2deg(angle_between(torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=q.dtype).expand_as(q), q))

    def snapshot(self) -> dict | None:
        """What the render thread needs, taken together (None while nothing is loaded)."""
        with self._lock:
            if self.loaded is None:
                return None
            m, p = self.loaded, self.prediction()
            sel, ref = p["rows"]
            return {"params": m.fields["params"][sel], "ref_params": m.fields["params"][ref], "config": m.field_config,
                    "pred": p["pred"], "true": p["true"], "yaw_deg": self.yaw_deg, "version": self.version}


def make_field(config: ObjectFieldConfig, params: torch.Tensor, scene: Scene | None = None) -> ObjectField:
    """An NGP field holding one data-set row's flat parameters, in eval mode."""
    return ObjectField(config, scene).load_flat(params).eval()
