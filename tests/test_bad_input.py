"""Issue 16's bad inputs through the real CLI entry point (in-process `main`): each ends with rc 2 and one
sentence, nothing written and nothing lost. Numbers are checked in the dtype they are used in (float32 poses).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from app.cli import main
from app.video import remove_dead_temps
from renderer.models import build_model
from training.checkpoint import save_checkpoint
from training.disk import check_free_space
from training.run_dir import LOCK_NAME, claim
from renderer.errors import RedcubeError

TRAIN = ["train", "--res", "16", "--steps", "2", "--quiet"]


def refused(capsys, error_line, *argv: str) -> str:
    """Run the CLI; it must answer rc 2 with one sentence on stderr and nothing on stdout."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    return error_line(err)


@pytest.fixture(scope="module")
def net(tmp_path_factory, scene) -> Path:
    torch.manual_seed(0)
    model = build_model("posemlp", {"width": 16, "layers": 2}, scene)
    return save_checkpoint(tmp_path_factory.mktemp("net") / "net.safetensors", model, scene, step=4, train={"res": 16, "seed": 0})


def bad_file(path: Path, content: str | bytes | None) -> Path:
    """A user's file holding `content` (text or bytes), or a directory in its place (None)."""
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def edited(src: Path, dst: Path, edit) -> Path:
    """A copy of a checkpoint whose record went through edit(record) (a hand-edited or foreign file)."""
    with safe_open(str(src), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        record = json.loads(f.metadata()["redcube"])
    edit(record)
    save_file(tensors, str(dst), metadata={"redcube": json.dumps(record)})
    return dst


@pytest.mark.parametrize("flags,words", [
    (["--minutes", "nan"], "--minutes"),  # trained forever and wrote NaN into checkpoint.json
    (["--lr", "nan"], "--lr"),
    (["--eval-every", "0"], "--eval-every"),  # a ZeroDivisionError traceback
    (["--checkpoint-every", "inf"], "--checkpoint-every"),
    (["--set", "width=abc"], "width"),
    (["--set", "width=1e9"], "width"),
    (["--set", "width=60000"], "parameters"),  # a whole number, but 14 billion weights
    (["--set", "skip=1"], "true or false"),
])
def test_bad_training_numbers(capsys, error_line, tmp_path, flags, words):
    assert words in refused(capsys, error_line, *TRAIN, "--out", tmp_path / "r", *flags)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("where", ["file", "under a file", "proc"])
def test_an_unusable_out_is_error_line(capsys, error_line, tmp_path, where):
    (tmp_path / "f").write_text("not a directory")
    out = {"file": tmp_path / "f", "under a file": tmp_path / "f" / "run", "proc": Path("/proc/redcube-run")}[where]
    assert str(out) in refused(capsys, error_line, *TRAIN, "--out", out)
    assert (tmp_path / "f").read_text() == "not a directory"


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("999999999\n")  # a PID no process has: its holder died
    lock = claim(tmp_path)
    assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_free_space_is_checked_before_training(tmp_path, one_sentence):
    with pytest.raises(RedcubeError) as e:
        check_free_space(tmp_path, 10 ** 18)  # an exabyte checkpoint fits no disk here
    one_sentence(str(e.value))
    assert "free" in str(e.value)


def test_a_yaw_that_overflows_float32_is_refused(capsys, error_line, tmp_path):
    # 1e39 is a fine float64 but inf as float32: it rendered a flat sky image
    assert "float32" in refused(capsys, error_line, "render", "--pose", "0", "1.5", "1e39", "--res", "16",
                                "--out", tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("content,words", [
    ("cube_size = inf\n", "cube_size"),  # rendered no cube and trained
    ("cube_center = [0.0, 1e39, 0.0]\n", "cube_center"),
    ("ambient = 'bright'\n", "ambient"),
    ("scene = 3\n", "table"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "binary"),
    (None, "directory"),
])
def test_bad_scene_files(capsys, error_line, tmp_path, content, words):
    path = bad_file(tmp_path / "scene.toml", content)
    assert words in refused(capsys, error_line, "render", "--pose", "0", "1.5", "0", "--res", "16",
                            "--scene", path, "--out", tmp_path / "a.png")


@pytest.mark.parametrize("content,words", [
    (b"\x00\x01\xff\xfe binary", "binary"),
    (None, "directory"),
    ('[{"x": 0, "z": 1.5, "yaw": 1e39}]', "float32"),
    ('[{"x": 0, "z": 1.5, "yaw": true}]', "malformed"),
    ('[{"x": 0, "z": 1.5, "yaw": "0.3"}]', "malformed"),
    ('[3]', "malformed"),
    ('[{"x": 0, "z": 1.5, "yaw": 1' + "0" * 400 + '}]', "float32"),
])
def test_bad_poses_files(capsys, error_line, tmp_path, net, content, words):
    path = bad_file(tmp_path / "poses.json", content)
    assert words in refused(capsys, error_line, "eval", net, "--poses", path, "--sheet", tmp_path / "s.png")


@pytest.mark.parametrize("edit,words", [
    (lambda r: r["model"]["config"].update(width="wide"), "width"),
    (lambda r: r.update(step="many"), "step"),
    (lambda r: r.pop("scene"), "no scene"),
    (lambda r: r.update(scene=[1, 2]), "scene"),
    (lambda r: r["scene"].update(cube_size=float("inf")), "cube_size"),
])
def test_damaged_records_are_error_line(capsys, error_line, tmp_path, net, edit, words):
    bad = edited(net, tmp_path / "bad.safetensors", edit)
    assert words in refused(capsys, error_line, "eval", bad, "--n", "1", "--sheet", tmp_path / "s.png")


@pytest.fixture(scope="module")
def nan_net(tmp_path_factory, scene) -> Path:
    model = build_model("posemlp", {"width": 16, "layers": 2}, scene)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    return save_checkpoint(tmp_path_factory.mktemp("nan") / "nan.safetensors", model, scene, step=9, train={"res": 16})


def test_nan_weights_are_named_not_scored(capsys, error_line, tmp_path, nan_net):
    # eval: an IndexError in error_map before; export-video: a garbage video with rc 0
    assert "NaN" in refused(capsys, error_line, "eval", nan_net, "--n", "1", "--sheet", tmp_path / "s.png")
    dead = tmp_path / ".v.999999999.tmp.mp4"  # a killed export's temp file (no process has that PID)
    dead.write_bytes(b"\0")
    assert "NaN" in refused(capsys, error_line, "export-video", nan_net, "--preset", "orbit", "--frames", "3",
                            "--res", "16", "--out", tmp_path / "v.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no video, no temp file, the dead one reclaimed


def test_remove_dead_temps_keeps_a_live_export(tmp_path):
    live, dead = tmp_path / ".a.1.tmp.mp4", tmp_path / ".b.999999999.tmp.mp4"
    live.write_bytes(b"")  # PID 1 is alive
    dead.write_bytes(b"")
    remove_dead_temps(tmp_path)
    assert not dead.exists() and live.exists()


def test_a_foreign_checkpoint_in_export_video_names_the_right_tool(capsys, error_line, tmp_path, net):
    mnif = edited(net, tmp_path / "m.safetensors", lambda r: r["model"].update(kind="mnif", config={}))
    assert "sample-mnif" in refused(capsys, error_line, "export-video", mnif, "--preset", "orbit",
                                    "--out", tmp_path / "v.mp4")


def test_a_vae_folder_whose_config_is_not_an_object(capsys, error_line, tmp_path):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("[]")
    assert "config.json" in refused(capsys, error_line, "train", "--latent", "--res", "128", "--steps", "1",
                                    "--vae", tmp_path / "vae", "--out", tmp_path / "r")
