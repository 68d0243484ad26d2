"""Property-based fuzzing (hypothesis) of what a user hands the CLI: poses files, scene TOML, the settings file,
`--set` values and numeric flags. Every outcome is rc 0 with a sane result or rc 2 with one sentence: never a
traceback, never a hang. The CLI's `main` runs in-process (a subprocess per example would take minutes);
examples are derandomized, so a run is reproducible, and their counts are modest to keep the suite quick.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from app.gui.settings import WINDOW_RANGE, Settings, load_settings
from app.gui.state import ViewSettings
from app.gui.training_session import TrainChoices
from conftest import check_error_line, check_one_sentence
from renderer.errors import RedcubeError
from renderer.models import build_model
from renderer.numbers import fits_float32
from renderer.scene import Scene
from training.checkpoint import save_checkpoint
from training.evaluate import load_poses

FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None)
SCALE = int(os.environ.get("REDCUBE_FUZZ_SCALE", "1"))
"""Multiplies every example count (a long fuzz run: REDCUBE_FUZZ_SCALE=20)."""


def fuzz(strategy, examples: int, check) -> Counter:
    """Run check(example) -> accepted? over `examples` derandomized examples; both outcomes must occur, or the
    fuzzing exercised one side only. Returns the tally (printed with -s)."""
    seen = Counter()

    @settings(**FUZZ, max_examples=examples * SCALE)
    @given(strategy)
    def run(example):
        seen["accepted" if check(example) else "refused"] += 1

    run()
    print(f"{examples * SCALE} examples asked: {dict(seen)}")
    assert seen["accepted"] and seen["refused"], seen
    return seen

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 30, 10 ** 30),
    st.sampled_from([0, 0.5, 1.5, -2.0, 3.1, 1e39, -1e39, 10 ** 400, 3.4e38, 1e-45]),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=8))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                  st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                           max_leaves=12)


def cli(*argv) -> tuple[int, str, str]:
    """`redcube ARGV` in this process: (rc, stdout, stderr); argparse's exits count as their return codes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def check_outcome(code: int, err: str) -> str | None:
    """rc 0, or rc 2 with one line of one sentence (returned)."""
    assert code in (0, 2), (code, err)
    if code == 0:
        return None
    return check_error_line(err)


def json_text(value) -> str:
    return json.dumps(value)  # NaN and Infinity as Python writes them, which json.loads reads back


# ---- poses files ------------------------------------------------------------------------------------------
COORD = st.one_of(st.floats(-2.0, 2.0), NUMBERS)  # often inside the scene, often not
POSE = st.fixed_dictionaries({"x": COORD, "z": COORD, "yaw": COORD},
                             optional={"y": NUMBERS, "pitch": NUMBERS, "note": JSON_LEAVES})
POSES_FILE = st.one_of(
    st.lists(POSE, min_size=1, max_size=3).map(json_text),
    JSON_VALUES.map(json_text),
    st.binary(max_size=64),
    st.text(max_size=40),
)


def write(directory: str, name: str, content: str | bytes) -> Path:
    path = Path(directory) / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_poses_files_load_or_say_why():
    scene = Scene()

    def check(content) -> bool:
        with tempfile.TemporaryDirectory() as d:
            try:
                poses = load_poses(write(d, "poses.json", content), scene)
            except RedcubeError as e:
                check_one_sentence(str(e))
                return False
        assert poses.dtype == torch.float32 and poses.ndim == 2 and poses.shape[1] == 5 and len(poses) >= 1
        assert bool(torch.isfinite(poses).all())
        assert bool((poses[:, [0, 2]].abs() <= scene.pos_bounds + 1e-5).all())
        return True
    fuzz(POSES_FILE, 300, check)


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    scene = Scene()
    torch.manual_seed(0)
    model = build_model("posemlp", {"width": 16, "layers": 2}, scene)
    return save_checkpoint(tmp_path_factory.mktemp("fuzz") / "net.safetensors", model, scene, step=1, train={"res": 16})


def test_poses_files_through_redcube_eval(net):
    """The same inputs through `redcube eval` (a real rasterizer and network per example)."""

    def check(content) -> bool:
        with tempfile.TemporaryDirectory() as d:
            code, out, err = cli("eval", net, "--poses", write(d, "poses.json", content), "--res", "16",
                                 "--sheet", Path(d) / "sheet.png")
            if check_outcome(code, err) is not None:
                return False
            result = json.loads(out)
            assert math.isfinite(result["psnr"]) and Path(result["sheet"]).exists()
            return True
    fuzz(st.one_of(st.lists(POSE, min_size=1, max_size=2).map(json_text), POSES_FILE), 30, check)


# ---- scene TOML ---------------------------------------------------------------------------------------------
SCENE_KEYS = [f for f in Scene.__dataclass_fields__] + ["colour", "scene"]


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, int):
        return str(max(-2 ** 63, min(2 ** 63 - 1, v)))  # TOML integers are 64-bit
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def toml_text(d: dict) -> str:
    return "".join(f"{k} = {toml_value(v)}\n" for k, v in d.items())


TOML_SCALAR = st.one_of(st.booleans(), st.floats(0.01, 3.0), NUMBERS, st.text(max_size=6))
TOML_VALUE = st.one_of(TOML_SCALAR, st.lists(st.one_of(st.floats(0, 1), NUMBERS), min_size=1, max_size=4))
SCENE_TOML = st.one_of(
    st.dictionaries(st.sampled_from(SCENE_KEYS), TOML_VALUE, max_size=3).map(toml_text),
    st.binary(max_size=64),
    st.text(max_size=60),
)


def test_scene_files_load_or_say_why():
    def check(content) -> bool:
        with tempfile.TemporaryDirectory() as d:
            try:
                scene = Scene.from_toml(write(d, "scene.toml", content))
            except RedcubeError as e:
                check_one_sentence(str(e))
                return False
        for name in ("cube_size", "fov_deg", "near", "far", "pos_bounds", "ground_half_size", "ambient"):
            assert fits_float32(getattr(scene, name)), name
        assert scene.cube_size > 0 and 0 < scene.near < scene.far
        return True
    fuzz(SCENE_TOML, 300, check)


def test_scene_files_through_redcube_render():
    """Scene files through `redcube render` (a real rasterizer per example): a 16² PNG or one sentence."""
    import imageio.v3 as iio

    def check(content) -> bool:
        with tempfile.TemporaryDirectory() as d:
            png = Path(d) / "a.png"
            code, _, err = cli("render", "--pose", "0", "1.5", "0", "--res", "16", "--scene", write(d, "s.toml", content), "--out", png)
            if check_outcome(code, err) is not None:
                assert not png.exists()
                return False
            assert iio.imread(png).shape[:2] == (16, 16)
            return True
    plausible = st.fixed_dictionaries({}, optional={k: st.floats(0.05, 0.9) for k in ("cube_size", "ambient", "grid_line_width")})
    fuzz(st.one_of(plausible.map(toml_text), SCENE_TOML), 30, check)


# ---- the settings file ----------------------------------------------------------------------------------------
SETTINGS_KEYS = list(Settings.__dataclass_fields__) + ["extra"]
SECTION = st.dictionaries(st.sampled_from(["width", "height", "speed", "free", "pose", "res", "model", "threads", "mode",
                                           "split", "net_res", "budget", "unit"]), JSON_VALUES, max_size=4)
SETTINGS_FILE = st.one_of(
    st.dictionaries(st.sampled_from(SETTINGS_KEYS), st.one_of(JSON_VALUES, SECTION), max_size=5).map(json_text),
    JSON_VALUES.map(json_text),
    st.binary(max_size=40),
)


def test_settings_files_open_with_defaults_for_bad_entries():
    """What the app reads before its window exists: never an exception; every kept value fits its widget."""

    def check(content) -> bool:
        with tempfile.TemporaryDirectory() as d:
            s, note = load_settings(write(d, "settings.json", content))
        for line in (note or "").splitlines():
            check_one_sentence(line)
        lo, hi = WINDOW_RANGE
        assert all(isinstance(v, int) and lo <= v <= hi for k, v in s.window.items() if k in ("width", "height"))
        assert isinstance(s.camera, dict) and isinstance(s.camera.get("pose", {}), dict)
        assert all(fits_float32(v) for v in s.camera.get("pose", {}).values())
        assert "speed" not in s.camera or (fits_float32(s.camera["speed"]) and s.camera["speed"] > 0)
        TrainChoices.from_dict(s.training)  # the Training panel's widgets start from these
        try:
            ViewSettings.from_dict(s.view)
        except (RedcubeError, TypeError, ValueError):
            pass  # the app catches these and says so in the window (App._restore_view)
        return note is None
    fuzz(SETTINGS_FILE, 300, check)


# ---- --set values and numeric flags -----------------------------------------------------------------------------
SET_KEYS = st.sampled_from(["width", "layers", "n_freqs", "input", "skip", "out_channels", "w0", "depth", ""])
SET_VALUES = st.one_of(st.sampled_from(["abc", "1e9", "nan", "NaN", "Infinity", "-3", "0", "true", "[1]", "65537", "{}", "",
                                        "256", "plucker", "3.5", "1" + "0" * 30]),
                       st.integers(1, 64).map(str), st.text(max_size=6), NUMBERS.map(str))
TRAIN_FLAGS = st.tuples(
    st.sampled_from(["posemlp", "siren", "ngp"]),
    st.lists(st.tuples(SET_KEYS, SET_VALUES), max_size=2),
    st.sampled_from(["--minutes", "--lr", "--eval-every", "--batch-size", "--steps", "--checkpoint-every", "--heldout"]),
    st.one_of(st.integers(1, 100).map(str), NUMBERS.map(str), st.text(max_size=5)),
)


def test_training_flags_are_taken_or_refused_in_one_sentence():
    """The whole `redcube train` boundary in-process, stopped just after it: --resume on an empty directory
    answers "nothing to resume" once every flag and setting was accepted, so no example trains."""

    def check(example) -> bool:
        model, pairs, flag, number = example
        sets = [a for k, v in pairs for a in ("--set", f"{k}={v}")]
        with tempfile.TemporaryDirectory() as d:
            code, _, err = cli("train", "--model", model, "--res", "16", "--steps", "5", *sets, flag, number,
                               "--resume", "--out", Path(d) / "empty")
        message = check_outcome(code, err)
        assert code == 2 and message is not None
        if not message.startswith("nothing to resume"):
            return False
        if flag in ("--minutes", "--lr", "--checkpoint-every"):  # accepted: positive and finite in float32
            assert 0 < float(number) and np.isfinite(np.float32(float(number)))
        return True
    fuzz(TRAIN_FLAGS, 200, check)
