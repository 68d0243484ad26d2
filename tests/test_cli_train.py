"""`redcube train`, `eval` and `experiment` end to end, in-process through `app.cli.main` (what the
console script runs), plus one real `redcube train` process stopped with Ctrl-C.

One tiny streamed training run is shared by the eval tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from app.cli import main
from conftest import digest
from training.checkpoint import load_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
TINY = ["--steps", "20", "--batch-size", "1024", "--res", "16", "--heldout", "4", "--eval-every", "10", "--set", "width=64"]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`redcube train` with the defaults (posemlp, streamed data) on a tiny budget."""
    run = tmp_path_factory.mktemp("train") / "run"
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["train", *TINY, "--out", str(run)])
    return code, run, out.getvalue(), err.getvalue()


def test_train_writes_a_checkpoint_and_prints_json(trained):
    code, run, out, err = trained
    assert code == 0, err
    result = json.loads(out)
    assert result["checkpoint"] == str(run / "checkpoint.safetensors") and result["step"] == 20
    assert isinstance(result["test_psnr"], float) and isinstance(result["test_ssim"], float)
    ck = load_checkpoint(run)
    assert ck.kind == "posemlp" and ck.step == 20
    assert ck.record["train"]["data"] == "stream" and ck.record["train"]["res"] == 16
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "done" and events.count("eval") == 2


def test_train_prints_json_and_a_progress_line(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--steps", "6", "--batch-size", "256", "--res", "16", "--heldout", "2",
                             "--data", "fixed", "--fixed-samples", "2048", "--set", "width=32", "--set", "input=plucker",
                             "--out", str(tmp_path / "r"))
    assert code == 0, err
    result = json.loads(out)
    assert result["step"] == 6 and Path(result["checkpoint"]) == tmp_path / "r" / "checkpoint.safetensors"
    assert isinstance(result["test_psnr"], float) and isinstance(result["test_ssim"], float)
    assert "step 6" in err and "test_psnr" in err  # the eval line (the tqdm bar draws on a terminal only)
    ck = load_checkpoint(tmp_path / "r")
    assert ck.record["model"]["config"]["width"] == 32 and ck.record["model"]["config"]["input"] == "plucker"


def test_eval_prints_psnr_ssim_json_and_writes_the_sheet(trained, tmp_path, capsys):
    run = trained[1]
    sheet, js = tmp_path / "sheet.png", tmp_path / "out" / "eval.json"
    code, out, err = run_cli(capsys, "eval", str(run), "--n", "4", "--sheet", str(sheet), "--json", str(js))
    assert code == 0, err
    result = json.loads(out)
    assert isinstance(result["psnr"], float) and isinstance(result["ssim"], float)
    assert 5 < result["psnr"] < 60 and 0 < result["ssim"] <= 1
    assert result["n"] == 4 and result["res"] == 16 and len(result["psnr_per_pose"]) == 4
    assert result["psnr"] == pytest.approx(np.mean(result["psnr_per_pose"]), abs=1e-2)
    assert json.loads(js.read_text()) == result
    assert sheet.stat().st_size > 0 and Path(result["sheet"]) == sheet
    img = iio.imread(sheet)
    assert img.ndim == 3 and img.shape[2] in (3, 4) and img.dtype == np.uint8
    assert img.shape[1] >= 3 * 128 and img.shape[0] >= 4 * 128  # gt | network | error, one row per pose
    # The held-out set of the run itself: a different --n picks the same first poses.
    code, out, _ = run_cli(capsys, "eval", str(run), "--n", "2", "--sheet", str(tmp_path / "s2.png"))
    assert code == 0 and json.loads(out)["psnr_per_pose"] == result["psnr_per_pose"][:2]


def test_eval_with_a_poses_file(trained, tmp_path, capsys, write_file):
    run = trained[1]
    poses = write_file("poses.json", json.dumps([{"x": 0, "z": 1.5, "yaw": 0}, {"x": -1, "z": 0.5, "yaw": 1.2}]))
    code, out, err = run_cli(capsys, "eval", str(run), "--poses", str(poses), "--res", "32",
                             "--sheet", str(tmp_path / "s.png"))
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 2 and result["res"] == 32 and len(result["psnr_per_pose"]) == 2
    assert (tmp_path / "s.png").stat().st_size > 0


@pytest.mark.parametrize("content,words", [
    ("[{\"x\": 0, \"z\": 1.5, \"yaw\": 0", "not valid JSON"),
    ("[{\"x\": 0, \"yaw\": 0}]", "malformed"),
    ("[{\"x\": \"left\", \"z\": 0, \"yaw\": 0}]", "malformed"),
    ("[]", "non-empty JSON list"),
    ("{\"x\": 0, \"z\": 1, \"yaw\": 0}", "non-empty JSON list"),
    ("[{\"x\": 0, \"z\": 1, \"yaw\": 0}, {\"x\": 2.5, \"z\": 0, \"yaw\": 0}]", "pose 1"),
])
def test_eval_rejects_a_bad_poses_file_with_one_line(trained, tmp_path, capsys, write_file, error_line,
                                                     content, words):
    run = trained[1]
    poses = write_file("poses.json", content)
    sheet = tmp_path / "sheet.png"
    code, out, err = run_cli(capsys, "eval", str(run), "--poses", str(poses), "--sheet", str(sheet))
    assert code != 0 and out == ""
    assert words in error_line(err)
    assert not sheet.exists()


def test_eval_of_a_missing_poses_file_is_one_line(trained, tmp_path, capsys, error_line):
    run = trained[1]
    code, _, err = run_cli(capsys, "eval", str(run), "--poses", str(tmp_path / "nope.json"))
    assert code != 0 and "does not exist" in error_line(err)


def test_eval_of_a_corrupt_checkpoint_is_one_line_and_leaves_it_alone(trained, tmp_path, capsys, error_line):
    run = trained[1]
    bad = tmp_path / "bad.safetensors"
    data = (run / "checkpoint.safetensors").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    before = digest(bad)
    code, out, err = run_cli(capsys, "eval", str(bad), "--n", "2", "--sheet", str(tmp_path / "s.png"))
    assert code != 0 and out == ""
    assert "corrupt" in error_line(err)
    assert digest(bad) == before and not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("args,words", [
    (["--model", "nerf9000", "--steps", "5"], "unknown model"),
    (["--set", "depth=3", "--steps", "5"], "no setting"),
    (["--set", "input", "--steps", "5"], "KEY=VALUE"),
    (["--res", "8", "--steps", "5"], "resolution 8"),
    ([], "budget"),
    (["--steps", "5", "--resume"], "nothing to resume"),
])
def test_train_rejects_bad_input_with_one_line(tmp_path, capsys, error_line, args, words):
    out_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", *args, "--out", str(out_dir), "--quiet")
    assert code != 0 and out == ""
    assert words in error_line(err)
    assert not out_dir.exists()


def test_train_resume_of_another_model_is_one_line_and_keeps_the_checkpoint(trained, tmp_path, capsys, error_line):
    run = trained[1]
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    files = {p.name: digest(p) for p in copy.iterdir()}
    code, out, err = run_cli(capsys, "train", *TINY, "--set", "width=128", "--resume", "--out", str(copy), "--quiet")
    assert code != 0 and out == ""
    assert "resume with the same model" in error_line(err)
    assert {p.name: digest(p) for p in copy.iterdir()} == files


@pytest.mark.slow  # ~25 s: two arms, one of them streamed
def test_experiment_overfit_writes_the_plot_and_both_arms(tmp_path, capsys):
    code, out, err = run_cli(capsys, "experiment", "overfit", "--steps", "10", "--eval-every", "5", "--batch-size", "512",
                             "--res", "16", "--set", "width=64", "--out", str(tmp_path))
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["arms"]) == {"fixed-100k", "stream"}
    png, js = tmp_path / "overfit" / "overfit.png", tmp_path / "overfit" / "overfit.json"
    assert Path(summary["plot"]) == png and png.stat().st_size > 0 and iio.imread(png).ndim == 3
    saved = json.loads(js.read_text())
    assert set(saved["curves"]) == {"fixed-100k", "stream"}
    for arm, curve in saved["curves"].items():
        assert [r["step"] for r in curve] == [5, 10], arm
        assert all(isinstance(r["test_psnr"], float) and isinstance(r["train_psnr"], float) for r in curve)
        assert saved["arms"][arm]["step"] == 10
    assert saved["arms"] == summary["arms"]
    assert load_checkpoint(tmp_path / "overfit" / "fixed-100k").record["train"]["data"] == "fixed"
    assert load_checkpoint(tmp_path / "overfit" / "stream").record["train"]["data"] == "stream"


def test_latent_only_experiment_options_elsewhere_are_one_sentence(tmp_path, capsys, error_line):
    code, out, err = run_cli(capsys, "experiment", "overfit", "--shards", str(tmp_path), "--steps", "1", "--out", str(tmp_path))
    assert code == 2 and out == ""
    assert "only apply to the latent experiment" in error_line(err)
    assert not (tmp_path / "overfit").exists()  # refused before any arm ran


def test_ctrl_c_stops_redcube_train_with_a_final_checkpoint(tmp_path):
    """A real process: the first SIGINT asks for a stop, the run ends with a checkpoint and its JSON."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "app.cli", "train", "--minutes", "30", "--batch-size", "256", "--res", "16",
           "--heldout", "2", "--data", "fixed", "--fixed-samples", "2048", "--set", "width=32", "--threads", "1",
           "--quiet", "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = run / "log.jsonl"
        deadline = time.monotonic() + 180
        while not (log.exists() and '"event": "train"' in log.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no training record within three minutes"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping: writing a final checkpoint" in err
    result = json.loads(out)
    ck = load_checkpoint(run)
    assert ck.step == result["step"] >= 25
    assert json.loads(log.read_text().splitlines()[-1])["event"] == "done"


def test_train_help_lists_every_kind_and_each_flag_with_its_default_and_docstring(capsys):
    from app.flags import field_docs
    from training.kinds import kinds
    from training.mnif.autodecode import MNIFTrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    listing = capsys.readouterr().out
    assert all(name in listing for name in kinds())
    with pytest.raises(SystemExit):
        main(["train", "mnif", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    # one source of truth: the dataclass's default and docstring (train-mnif's --lr said 5e-4 while the config said 2e-4)
    assert f"--lr FLOAT {field_docs(MNIFTrainConfig)['lr']} (default: {MNIFTrainConfig.lr})" in text
    assert "--diffusion-steps INT Denoiser training steps" in text and "(default: 3000)" in text


def test_train_mnif_alias_trains_the_mnif_then_its_diffusion_model(tmp_path, capsys):
    out = tmp_path / "mnif"
    small = ["--steps", "2", "--worlds", "4", "--batch-worlds", "2", "--points", "64", "--eval-worlds", "1", "--eval-views", "1",
             "--eval-res", "16", "--samples", "8", "--supersample", "1", "--fit-steps", "1", "--bases", "2", "--width", "16",
             "--latent-dim", "4", "--diffusion-steps", "3", "--denoiser-width", "16", "--denoiser-blocks", "1", "--quiet"]
    code, stdout, err = run_cli(capsys, "train-mnif", *small, "--out", str(out))
    assert code == 0, err
    result = json.loads(stdout)
    assert result["step"] == 2 and result["diffusion_steps"] == 3 and Path(result["diffusion"]) == out / "diffusion.safetensors"
    code, stdout, err = run_cli(capsys, "train-mnif", "--diffusion-only", "--diffusion-steps", "2", "--denoiser-width", "16",
                                "--denoiser-blocks", "1", "--out", str(out), "--quiet")
    assert code == 0, err
    assert json.loads(stdout)["diffusion_steps"] == 2


@pytest.mark.parametrize("name", ["pixel", "latent", "vae", "mnif", "mnif-meta", "diffusion", "weightspace", "weightspace-grid"])
def test_a_kinds_flags_default_to_its_dataclasses(name):
    """No flag given: every config the command builds equals its dataclass built with defaults (nested ones included)."""
    import dataclasses

    from app.cli import build_parser
    from app.commands.train import job_from
    from training.kinds import kind

    given = {} if name == "diffusion" else {"steps": 5, **({"data": "d"} if name.startswith("weightspace") else {})}
    argv = ["train", name] + [x for k, v in given.items() for x in (f"--{k}", str(v))]
    job = job_from(build_parser().parse_args(argv))
    for part in kind(name).parts:
        names = {f.name for f in dataclasses.fields(part.cls)}
        want = part.cls(**{k: v for k, v in given.items() if k in names and not part.prefix})
        got = job.parts[part.name]
        skipped = {k: getattr(want, k) for k in part.skip if k in names}  # not flags: left at the default
        assert got == dataclasses.replace(want, **skipped), part.name
