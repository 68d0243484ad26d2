"""`redcube render` end to end: a real PNG, and one `redcube: error:` line for bad input.

Two commands run as real processes, started together (each pays for importing torch): a good render
through the installed `redcube` script and an out-of-bounds pose through `python -m app.cli`. The
other bad inputs go through the same `app.cli.main` in-process, which is what those processes run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from app.cli import main

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "redcube"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start both processes at once; name -> (CompletedProcess, tmp dir)."""
    tmp = tmp_path_factory.mktemp("cli")
    render = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
    commands = {
        "ok": render + ["render", "--pose", "0", "2", "0", "--res", "64", "--out", str(tmp / "out" / "x.png"),
                        "--depth", str(tmp / "out" / "depth.png")],
        "pose": [sys.executable, "-m", "app.cli", "render", "--pose", "3", "0", "0", "--res", "64",
                 "--out", str(tmp / "pose.png")],
    }
    procs = {k: subprocess.Popen(c, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, c in commands.items()}
    out = {}
    for k, p in procs.items():
        stdout, stderr = p.communicate(timeout=180)
        out[k] = subprocess.CompletedProcess(commands[k], p.returncode, stdout, stderr)
    return out, tmp


def is_red(px) -> bool:
    r, g, b = (int(v) for v in px[:3])
    return r > 80 and g < 30 and b < 30


def test_render_writes_a_png_with_red_in_the_middle(runs):
    res, tmp = runs
    r = res["ok"]
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    path = tmp / "out" / "x.png"
    assert str(path) in r.stdout
    img = iio.imread(path)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert all(is_red(img[y, x]) for y in (28, 32, 35) for x in (28, 32, 35))
    assert img[0, 0, 2] > 240 and img[0, 0, 0] < 120  # sky at the top
    depth = iio.imread(tmp / "out" / "depth.png")
    assert depth.dtype == np.uint16 and depth.shape == (64, 64)
    assert abs(int(depth[32, 32]) - 1500) <= 2  # millimetres: the front face is 1.5 m away


def test_pose_out_of_bounds_exits_with_one_error_line(runs, error_line):
    res, tmp = runs
    r = res["pose"]
    assert r.returncode != 0 and "out of bounds" in error_line(r.stderr)
    assert r.stdout == "" and not (tmp / "pose.png").exists()


def run_main(capsys, *args: str):
    code = main(["render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_render_uses_the_scene_option(tmp_path, capsys):
    (tmp_path / "narrow.toml").write_text("[scene]\nfov_deg = 30.0\n")
    code, out, err = run_main(capsys, "--pose", "0", "2", "0", "--res", "32", "--out", str(tmp_path / "n.png"),
                              "--scene", str(tmp_path / "narrow.toml"))
    assert code == 0 and err == "", err
    img = iio.imread(tmp_path / "n.png")
    # A 30 deg field of view from 1.5 m: the 1 m face fills the frame.
    assert all(is_red(img[y, x]) for y in (2, 16, 29) for x in (2, 16, 29))


@pytest.mark.parametrize("case,words", [
    ("res", "resolution 8"),
    ("unwritable", "cannot write"),
    ("scene", "not valid TOML"),
    ("missing-scene", "does not exist"),
    ("pose", "out of bounds"),
])
def test_bad_input_is_one_error_line(tmp_path, capsys, case, words, error_line):
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "keep.png").write_bytes(b"previous output")
    (tmp_path / "bad.toml").write_text("[scene\nfov_deg = 60\n")
    good = ["--pose", "0", "2", "0", "--res", "32"]
    args = {
        "res": ["--pose", "0", "2", "0", "--res", "8", "--out", str(tmp_path / "keep.png")],
        "unwritable": good + ["--out", str(tmp_path / "a_file" / "x.png")],
        "scene": good + ["--out", str(tmp_path / "keep.png"), "--scene", str(tmp_path / "bad.toml")],
        "missing-scene": good + ["--out", str(tmp_path / "keep.png"), "--scene", str(tmp_path / "nope.toml")],
        "pose": ["--pose", "0", "-2.5", "0", "--out", str(tmp_path / "keep.png")],
    }[case]
    code, out, err = run_main(capsys, *args)
    assert code != 0 and words in error_line(err)
    # Nothing saved is lost.
    assert (tmp_path / "keep.png").read_bytes() == b"previous output"
    assert (tmp_path / "a_file").read_text() == "not a directory"
