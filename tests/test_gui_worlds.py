"""The Worlds tab (issue 6 item 5): its state object without a GUI, then the real app under Xvfb driving the panel.

A tiny mNIF (4 bases, width 16) is fitted for 20 steps to 6 training worlds and a latent DDPM for a few
steps to its latents, both saved the way `redcube train-mnif` saves them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.gui.worlds_session import WorldsSession, around_corners, nearest_world
from test_gui import run_driver  # the Xvfb subprocess driver (tests/ is on sys.path)
from renderer.errors import RedcubeError
from renderer.models import build_model
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.worlds import Cubes, train_worlds, world_scene
from training.mnif.diffusion import DenoiserConfig, train_diffusion
from training.mnif.autodecode import MNIFTrainConfig, point_loss, sample_points, save_mnif

N_WORLDS, H = 6, 8
SMALL_DDPM = DenoiserConfig(latent_dim=H, width=32, blocks=1, time_dim=16)


def _fit(scene, latents: torch.Tensor, steps: int = 20) -> MNIF:
    torch.manual_seed(0)
    model = build_model("mnif", MNIFConfig(hidden_layers=1, width=16, bases=4, latent_dim=H), scene)
    cubes = Cubes.of([world_scene(p, scene) for p in train_worlds(N_WORLDS)])
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        loss, _ = point_loss(model, latents, sample_points(scene, cubes, 256, gen), 10.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _save_run(folder, scene, latents, ddpm_latents) -> Path:
    model = _fit(scene, latents)
    path = save_mnif(folder / "checkpoint.safetensors", model, latents, scene, MNIFTrainConfig(steps=20, worlds=N_WORLDS), 20, {})
    ld, _ = train_diffusion(ddpm_latents, steps=5, batch=8, config=SMALL_DDPM)
    ld.save(folder / "diffusion.safetensors")
    return path


@pytest.fixture(scope="module")
def tiny_mnif(tmp_path_factory, scene):
    """(checkpoint with its own diffusion model beside it, checkpoint whose diffusion came from another mNIF)."""
    torch.manual_seed(0)
    latents = torch.randn(N_WORLDS, H)
    good = _save_run(tmp_path_factory.mktemp("mnif"), scene, latents, latents)
    other = _save_run(tmp_path_factory.mktemp("mnif_other"), scene, latents, torch.randn(N_WORLDS, H))
    return good, other


@pytest.fixture
def session(tiny_mnif, scene):
    s = WorldsSession(scene)
    notes = s.load(tiny_mnif[0])
    assert [level for _, level in notes] == ["info"]  # the mNIF and its own diffusion model, no warning
    return s


def test_interpolation_at_the_corners_is_the_corner_latents(session):
    session.set_corner(0, 5)
    session.set_corner(3, 2)
    latents = session.mnif.latents
    for (u, v), k in (((0, 0), 0), ((1, 0), 1), ((0, 1), 2), ((1, 1), 3)):
        session.set_uv(u=u, v=v)
        assert torch.allclose(session.current(), latents[session.corners[k]], atol=1e-6)
        assert session.nearest()[:2] == (session.corners[k], pytest.approx(0.0, abs=1e-5))  # a corner's nearest is itself
    session.set_uv(u=0.5, v=0.5)
    assert torch.allclose(session.current(), latents[[5, 1, 2, 2]].mean(0), atol=1e-6)


def test_bad_corner_and_scrub_are_one_sentence_and_change_nothing(session, one_sentence):
    before = (list(session.corners), session.u, session.v, session.version)
    for call in (lambda: session.set_corner(1, N_WORLDS), lambda: session.set_corner(1, -1),
                 lambda: session.set_uv(u=1.5), lambda: session.set_res(256)):
        with pytest.raises(RedcubeError) as e:
            call()
        one_sentence(str(e.value))
    assert "from 0 to 5" in str(pytest.raises(RedcubeError, session.set_corner, 0, 99).value)
    assert (list(session.corners), session.u, session.v, session.version) == before


def test_sampled_latent_is_finite_seeded_and_saved_latent_reloads(session, tmp_path, one_sentence):
    session.steps, session.seed = 10, 3
    session.sample()
    z = session.current().clone()
    assert z.shape == (H,) and torch.isfinite(z).all() and session.seed == 4  # the seed moves on
    assert session.nearest()[0] == nearest_world(session.mnif.latents, z)[0]
    session.save_latent(tmp_path / "z.safetensors")
    session.set_uv(u=0.3)  # back to the interpolation
    assert not torch.equal(session.current(), z)
    session.load_latent(tmp_path / "z.safetensors")
    assert torch.equal(session.current(), z)
    with pytest.raises(RedcubeError) as e:  # an unwritable place
        session.save_latent("/proc/nope/z.safetensors")
    one_sentence(str(e.value))


def test_wrong_latent_file_is_one_sentence(session, tmp_path, one_sentence):
    from app.commands.sample_mnif import save_latents

    save_latents(tmp_path / "wide.safetensors", torch.zeros(1, H + 1), session.mnif.fingerprint)
    save_latents(tmp_path / "alien.safetensors", torch.zeros(1, H), "0123456789abcdef")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    for name, words in (("wide", "have 9 numbers but this mNIF's have 8"), ("alien", "another mNIF"),
                        ("junk", "cannot read latents"), ("missing", "cannot read latents")):
        with pytest.raises(RedcubeError, match=words) as e:
            session.load_latent(tmp_path / f"{name}.safetensors")
        one_sentence(str(e.value))
    assert session.override is None  # nothing changed


def test_diffusion_of_another_mnif_and_missing_files_are_one_sentence(tiny_mnif, scene, tmp_path, one_sentence):
    s = WorldsSession(scene, default=tmp_path / "none" / "checkpoint.safetensors")
    notes = s.load(tiny_mnif[1])
    (text, level), = [n for n in notes if n[1] != "info"]
    assert level == "warn" and "another mNIF" in text
    one_sentence(text)
    with pytest.raises(RedcubeError, match="another mNIF") as e:  # Sample says why it is off
        s.sample()
    one_sentence(str(e.value))
    kept = s.mnif
    with pytest.raises(RedcubeError) as e:  # a diffusion file picked as the mNIF: the loaded one stays
        s.load(tiny_mnif[0].parent / "diffusion.safetensors")
    one_sentence(str(e.value))
    assert s.mnif is kept
    empty = WorldsSession(scene)
    with pytest.raises(RedcubeError, match="Load mNIF") as e:
        empty.set_corner(0, 1)
    one_sentence(str(e.value))


def test_interpolation_video_cancel_writes_nothing(session, rasterizer, tmp_path, one_sentence):
    import time

    from renderer.camera import Camera

    session.res = 32
    session.video.update(frames=200, out=str(tmp_path / "w.mp4"))
    session.export(rasterizer, Camera(x=1.5, z=1.5, yaw=0.8).pose())
    with pytest.raises(RedcubeError) as e:  # one export at a time
        session.export(rasterizer, Camera().pose())
    one_sentence(str(e.value))
    session.cancel()
    t0 = time.time()
    while not session.job.finished and time.time() - t0 < 30:
        time.sleep(0.05)
    text, level = session.outcome()
    assert level == "warn" and "cancelled" in text and session.job.done < 200
    assert not list(tmp_path.iterdir())  # no video, no temp file
    session.video.update(frames=1)
    with pytest.raises(RedcubeError, match="from 2 to 2000"):
        session.export(rasterizer, Camera().pose())


def test_around_corners_is_a_closed_loop():
    pts = around_corners(8)
    assert pts == [(0, 0), (0.5, 0), (1, 0), (1, 0.5), (1, 1), (0.5, 1), (0, 1), (0, 0.5)]


DRIVER = """
import imageio.v3 as iio
import numpy as np

app = App()
app.tabs["worlds"].session.default = Path({mnif!r})
dpg.set_value("_tabs", "_tab_worlds")   # open the Worlds tab: it loads its mNIF and starts rendering
app.tabs["worlds"].session.res = 32
out = {{}}

def picture():
    v = app.tabs["worlds"].session.version
    wait_for(lambda: app.tabs["worlds"].view.frame is not None and app.tabs["worlds"].view.frame.key[2] == v)
    app.step()
    return app.tabs["worlds"].view.frame

wait_for(lambda: app.tabs["worlds"].session.mnif is not None)
g = app.guard
kept = app.tabs["worlds"].session.mnif
g(app.tabs["worlds"].load)("/nope/mnif.safetensors")   # the Load mNIF dialog's handler, with a missing file
wait_for(lambda: app.tabs["worlds"].session.loading is None and app.messages[-1].level == "error", 20)
out["load_error"] = app.messages[-1].text
out["kept"] = app.tabs["worlds"].session.mnif is kept
g(app.tabs["worlds"].session.set_corner)(1, 5)            # the corner inputs' handler
g(app.tabs["worlds"].session.set_corner)(2, 99)           # out of range: a message, corners unchanged
out["corner_error"] = app.messages[-1].text
out["corners"] = app.tabs["worlds"].session.corners
g(app.tabs["worlds"].session.set_uv)(0.0, 0.0)            # the sliders' handlers
a = picture()
g(app.tabs["worlds"].session.set_uv)(1.0, 0.0)
b = picture()
out["uv_change"] = float(np.abs(a.net - b.net).mean())
out["net_std"] = float(b.net.std())
out["gt_sky"] = [float(c) for c in b.gt[0].mean(0)]
out["net_ms"] = b.net_ms
shown = app._shown["left"][0]                # the big viewport's left picture: the mixed world, not the red cube
out["shown"] = list(shown.shape) if shown is not None else None
out["display"] = app.view.display
g(lambda: app.message(app.tabs["worlds"].session.sample()))()   # the Sample button
out["sample_msg"] = app.messages[-1].text
c = picture()
out["sample_change"] = float(np.abs(c.net - b.net).mean())
shot = Path({shot!r})
app.screenshot(shot)
frames(3)
x, y = (int(v) for v in dpg.get_item_rect_min("_image_left"))
s = app.view.display
panel = iio.imread(shot)[y:y + s, x:x + s, :3].astype(np.float32)
from app.viewport import upscale
out["panel_vs_world"] = float(np.abs(panel - upscale(c.net, s) * 255).mean())
out["panel_vs_cube"] = float(np.abs(panel - app.viewer.left[:s, :s] * 255).mean())  # the View tab's ground truth
dpg.set_value("_tabs", "_tab_view")          # back to the View tab: the flying camera's pictures again
frames(3)
out["view_tab_back"] = app._viewport_owner is None and app._shown["left"][0] is app.viewer.left
app.tabs["worlds"].session.video.update(frames=4, fps=4, out={video!r})
g(app.tabs["worlds"].export)()                    # the Export button
wait_for(lambda: app.tabs["worlds"].session.job.finished)
app.step()
out["video_msg"] = app.messages[-1].text
out["progress"] = [app.tabs["worlds"].session.job.done, app.tabs["worlds"].session.job.total]
finish(out)
"""


def test_worlds_panel_in_the_app(tiny_mnif, tmp_path, one_sentence):
    import imageio.v3 as iio

    shot, video = tmp_path / "worlds.png", tmp_path / "worlds.mp4"
    out = run_driver(DRIVER.format(mnif=str(tiny_mnif[0]), shot=str(shot), video=str(video)), tmp_path, 60)
    assert out["corners"] == [0, 5, 2, 3] and "from 0 to 5" in out["corner_error"]
    assert "does not exist" in out["load_error"] and out["kept"]  # a missing file: a message, the mNIF stays
    for text in (out["corner_error"], out["load_error"]):
        one_sentence(text)
    assert out["uv_change"] > 0.01 and out["net_std"] > 0.01  # the picture follows u, v and is not flat
    sky = out["gt_sky"]
    assert sky[2] > sky[0] + 0.2  # the nearest world's rasterized top row is sky blue
    s = out["display"]
    assert out["shown"] == [s, s, 3]  # the Worlds tab fills the big viewport's left picture
    assert out["panel_vs_world"] < 4 and out["panel_vs_cube"] > 20  # on screen: the mNIF's world, not the red cube
    assert out["view_tab_back"]
    assert out["sample_msg"].startswith("sampled a world by DDIM") and out["sample_change"] > 0.001
    assert out["video_msg"].startswith("wrote") and out["progress"] == [4, 4]
    frames = np.stack(list(iio.imiter(video)))
    assert frames.shape == (4, 256, 512, 3)


CLICK_DRIVER = """
from app.gui.panel_worlds import GRID, SQUARE_AT

app = App()
w = app.tabs["worlds"].session
w.default = Path({mnif!r})
app.open_tab("worlds")
wait_for(lambda: w.mnif is not None)
wait_for(lambda: False, 1.0)                   # the tab's text settles (the layout below it moves)
x, y = dpg.get_item_rect_min("_draw_worlds_grid")
click_at(x + SQUARE_AT + 0.75 * GRID, y + SQUARE_AT + 0.25 * GRID)
out = {{"uv": [w.u, w.v], "sliders": [dpg.get_value("_slider_worlds_u"), dpg.get_value("_slider_worlds_v")]}}
finish(out)
"""


def test_a_click_in_the_interpolation_square_sets_u_and_v(tiny_mnif, tmp_path):
    out = run_driver(CLICK_DRIVER.format(mnif=str(tiny_mnif[0])), tmp_path, 60, xtest=True)
    assert out["uv"] == [pytest.approx(0.75, abs=0.02), pytest.approx(0.75, abs=0.02)]  # v grows upwards
    assert out["sliders"] == [pytest.approx(u, abs=0.02) for u in out["uv"]]
