"""The real-time viewport in the real window under Xvfb: while the camera flies, the network picture comes at the
dynamic resolution that holds the target frame rate (never below 64²); once it stops, the full resolution of the
current pose with its PSNR; the stats line names the network's own resolution and frame rate."""

from __future__ import annotations

import torch

from renderer.models import build_model
from test_gui import run_driver
from test_radiance import TINY, adam_steps
from training.checkpoint import save_checkpoint

DRIVER = """
app = App(checkpoint=Path({ckpt!r}))
wait_for(lambda: app.slot.current is not None and app.viewer.net is not None)
app.view.set(net_res=128, target_fps=240.0)  # a target no CPU holds at 128²: flying drops to the floor
flying = []
last = app.viewer.net
t0 = time.time()
while time.time() - t0 < 4 or len(flying) < 5:
    app.on_keys({{"left"}}, 1 / 60)
    app.step()
    if app.viewer.net is not last:
        last = app.viewer.net
        flying.append([last.res, last.still, last.psnr is None])
pose = tuple(float(v) for v in app.fly.camera.pose())
wait_for(lambda: app.viewer.net.still and app.viewer.net.pose == pose and app.viewer.net.res == 128, 30)
n = app.viewer.net
out = {{"flying": flying, "still": [n.res, n.still, n.pose == pose, n.psnr],
        "stats": app.viewer.stats.line(), "evals": app.slot.current.model.last_evals}}
finish(out)
"""


def test_flying_drops_to_the_dynamic_resolution_and_a_stop_refines(tmp_path, scene):
    torch.manual_seed(0)
    model = build_model("ngp", TINY, scene)
    adam_steps(model, scene, 6)
    ckpt = save_checkpoint(tmp_path / "ngp.safetensors", model, scene, step=6, train={"res": 64})
    out = run_driver(DRIVER.format(ckpt=str(ckpt)), tmp_path)
    moving = [f for f in out["flying"] if not f[1]]
    assert len(moving) >= 3 and all(64 <= res < 128 and no_psnr for res, _, no_psnr in moving)
    res, still, same_pose, psnr = out["still"]
    assert (res, still, same_pose) == (128, True, True) and psnr is not None
    assert "network" in out["stats"] and "@ 128²" in out["stats"] and "window" in out["stats"]
    assert out["evals"] is not None  # the fused kernel drew it
