"""Data-parallel training under torchrun (gloo on the CPU): real ranks in real processes.

A 2-rank run trains a few steps, rank 0 alone writes the log and one checkpoint, the held-out sets are
identical across ranks and the data streams are not, and the run resumes on a single rank.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import torchrun

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_two_ranks_train_then_resume_on_one(tmp_path):
    run = tmp_path / "run"
    train = ["--res", "16", "--batch-size", "512", "--eval-every", "10", "--heldout", "3", "--out", str(run), "--quiet"]
    p = torchrun(["--no-python", str(BIN / "redcube"), "train", "--steps", "12", *train], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count('"checkpoint"') == 1  # only rank 0 reports
    assert sorted(f.name for f in run.iterdir()) == ["checkpoint.json", "checkpoint.safetensors", "log.jsonl"]
    start = records(run)[0]
    assert start["event"] == "start" and start["world_size"] == 2 and start["dist_backend"] == "gloo"
    r0, r1 = start["ranks"]
    assert r0["heldout_sum"] == r1["heldout_sum"]  # the same held-out poses and pictures on every rank
    assert r0["first_pose"] != r1["first_pose"]  # each rank streams its own renders
    assert sum(1 for r in records(run) if r["event"] == "done") == 1

    p = subprocess.run([str(BIN / "redcube"), "train", "--steps", "16", "--resume", *train], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    done = [r for r in records(run) if r["event"] == "done"]
    assert [d["step"] for d in done] == [12, 16]  # picked up where the 2-rank run stopped


MISMATCH = """
import os, sys
from renderer.errors import RedcubeError
from training.trainer import TrainConfig, Trainer
rank = int(os.environ["RANK"])
say = lambda text: os.write(1, (text + "\\n").encode())  # one write: both ranks share the pipe, print() interleaves
for name, kw in [("config", dict(lr=1e-3 * (1 + rank))), ("batch", dict(batch_size=1001))]:
    try:
        Trainer(TrainConfig(res=16, steps=2, out_dir=sys.argv[1], **kw))
        say(f"{name} accepted")
    except RedcubeError as e:
        say(f"{name} refused: {e}")
"""


@pytest.mark.slow
def test_mismatched_configs_and_unsplittable_batch_are_one_sentence(tmp_path, one_sentence):
    script = tmp_path / "mismatch.py"
    script.write_text(textwrap.dedent(MISMATCH))
    p = torchrun(["--no-python", sys.executable, str(script), str(tmp_path / "run")], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [l for l in p.stdout.splitlines() if " refused: " in l]
    config = [l.split(" refused: ")[1] for l in lines if l.startswith("config")]
    batch = [l.split(" refused: ")[1] for l in lines if l.startswith("batch")]
    assert len(config) == 2 and "ranks [1]" in config[0]  # both ranks refuse; the message names the odd rank
    assert len(batch) == 2 and "1001" in batch[0] and "multiple of 2" in batch[0]
    for msg in (config[0], batch[0]):
        one_sentence(msg)
    assert not (tmp_path / "run").exists()  # nothing written


DIES = """
import os, sys
from renderer.errors import RedcubeError
from training.trainer import Hooks, TrainConfig, Trainer
say = lambda text: os.write(1, (text + "\\n").encode())
steps = [0]

def rank_1_dies():  # polled once a step on every rank
    steps[0] += 1
    if os.environ["RANK"] == "1" and steps[0] == 8:
        os._exit(3)

if __name__ == "__main__":  # the stream's producers are spawned: they import this file
    config = TrainConfig(res=16, steps=500, batch_size=512, eval_every=1000, heldout=2, checkpoint_every_s=1e-6, out_dir=sys.argv[1])
    try:
        Trainer(config, hooks=Hooks(wait_if_paused=rank_1_dies)).run()
    except RedcubeError as e:
        say(f"rank {os.environ['RANK']} stopped: {e}")
        sys.exit(1)
"""


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others_with_one_sentence_and_the_checkpoint_resumes(tmp_path, one_sentence):
    from training.checkpoint import load_checkpoint

    script, run = tmp_path / "dies.py", tmp_path / "run"
    script.write_text(textwrap.dedent(DIES))
    p = torchrun(["--no-python", sys.executable, str(script), str(run)], tmp_path)
    assert p.returncode != 0  # torchrun reports the failed rank
    said = [l.split(" stopped: ", 1)[1] for l in p.stdout.splitlines() if l.startswith("rank 0 stopped: ")]
    assert len(said) == 1, p.stdout[-2000:] + p.stderr[-2000:]
    one_sentence(said[0])
    saved = load_checkpoint(run / "checkpoint.safetensors").step  # whole, not torn by the kill
    assert f"the last checkpoint (step {saved})" in said[0] and "--resume" in said[0] and 1 <= saved < 10
    assert "done" not in [r["event"] for r in records(run)]  # every log line parses; the broken run claims no end

    resume = ["--res", "16", "--batch-size", "512", "--heldout", "2", "--eval-every", "1000", "--out", str(run), "--quiet"]
    p = subprocess.run([sys.executable, "-m", "app.cli", "train", "--steps", str(saved + 3), "--resume", *resume],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert records(run)[-1] == {**records(run)[-1], "event": "done", "step": saved + 3}
