"""The Rotations tab (issue 7 item 4): its state object without a GUI, then the real app under Xvfb driving the panel.

`tiny_weightspace` makes a tiny pair the way the CLI does: 3 objects x 3 rotations, each field fitted for 120 steps
(enough for a field that renders the object; 20 steps leave it empty), and a weight-space autoencoder and a grid arm
(`grid.safetensors` beside it) trained for 3 steps on two of the objects (one held out). The model's predictions are then arbitrary, so the tests check their form, not their accuracy;
what must be right is the convention: the true relative rotation, undone, lines the field up with the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.gui.rotations_session import RotationsSession, axis_angle, make_field, pca2, undo_rotation
from app.gui.rotations_view import orbit_pose, render_four
from renderer.errors import RedcubeError
from renderer.polycubes import polycube
from renderer.quaternions import angle_between, conjugate, multiply
from test_gui import run_driver  # the Xvfb subprocess driver (tests/ is on sys.path)
from training.metrics import psnr
from training.ngp_dataset import DatasetConfig, generate, object_seed
from training.ngp_fields import FitConfig, analytic_density, render_field

OBJECTS, ROTATIONS = 3, 3


def make_pair(root: Path, fit_steps: int = 120) -> tuple[Path, Path]:
    """(checkpoint, field data set directory): a tiny data set and two arms trained 3 steps on it (`grid_of` the second)."""
    from training.weightspace.grid_model import GridConfig
    from training.weightspace.grid_train import GridTrainConfig, train_grid
    from training.weightspace.model import WeightSpaceConfig
    from training.weightspace.train import WeightSpaceTrainConfig, train_weightspace

    data = root / "fields"
    generate(DatasetConfig(objects=OBJECTS, rotations=ROTATIONS, fit=FitConfig(steps=fit_steps, points=1024)), data,
             log=lambda s: None)
    train_weightspace(WeightSpaceTrainConfig(data=str(data), steps=3, batch=OBJECTS, points=32, out=str(root), heldout=1,
                                             model=WeightSpaceConfig(embed=32, latent=8, heads=2, layers=1)))
    train_grid(GridTrainConfig(data=str(data), steps=3, batch=4, heldout=1, out=str(root / "grid"),
                               model=GridConfig(res=8, width=4, depth=1)))
    return root / "checkpoint.safetensors", data


def grid_of(pair) -> Path:
    """The grid-arm checkpoint `make_pair` trains beside the autoencoder."""
    return Path(pair[0]).parent / "grid" / "checkpoint.safetensors"


@pytest.fixture(scope="module")
def tiny_weightspace(tmp_path_factory, one_thread):
    return make_pair(tmp_path_factory.mktemp("weightspace"))


@pytest.fixture
def session(tiny_weightspace, scene):
    s = RotationsSession(scene, *tiny_weightspace, grid_of(tiny_weightspace))
    assert s.load().startswith("loaded weight-space model")
    return s


def test_selection_prediction_and_pca(session):
    m = session.loaded
    assert m.objects == list(range(OBJECTS)) and m.pca.shape == (OBJECTS * ROTATIONS, 2) and torch.isfinite(m.pca).all()
    assert (session.object, session.rotation, session.reference) == (0, 1, 0)  # a rotation to predict at once
    from training.checkpoint import load_checkpoint

    assert len(m.heldout) == 1 and m.heldout == set(load_checkpoint(m.checkpoint).record["data"]["heldout_objects"])
    session.set_object(2)
    assert (session.rotation, session.reference) == (1, 0)
    session.set_rotation(2)
    sel, ref = session.rows()
    f = m.fields
    assert [int(f["object_ids"][sel]), int(f["rotation_ids"][sel]), int(f["object_ids"][ref]), int(f["rotation_ids"][ref])] == [2, 2, 2, 0]
    p = session.prediction()
    q = f["quaternions"]
    want = multiply(q[sel], conjugate(q[ref]))  # q_sel * q_ref^-1, written out (not via the code under test)
    assert float(torch.rad2deg(angle_between(p["true"], want))) < 0.01
    (axis, angle), (paxis, pangle) = p["true_axis_angle"], p["pred_axis_angle"]
    assert angle == pytest.approx(float(torch.rad2deg(angle_between(q[ref], q[sel]))), abs=0.01)
    for a in (axis, paxis):
        assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert 0 <= pangle <= 180 and 0 <= p["error_deg"] <= 180 and np.isfinite([*paxis, pangle, p["error_deg"]]).all()
    text = session.describe()
    assert f" {angle:.1f}" in text and f"> {p['arm']}" in text
    assert list(p["arms"]) == ["sane-tokens", "grid-axes", "feature-axes", "probe-axes"] and p["arm"] == "grid-axes"  # each arm's say
    lines = text.splitlines()
    for name, a in p["arms"].items():
        line = next(l for l in lines if l[2:].startswith(name))
        assert line.endswith(f"{a['error_deg']:.1f}") and f"{a['axis_angle'][1]:.1f}" in line
    assert max(map(len, lines)) <= 48  # fits the side panel
    session.set_color_by("rotation")
    assert session.colors().shape == (OBJECTS * ROTATIONS,) and float(session.colors().max()) <= 180


def test_picking_an_arm_changes_the_rotation_the_renders_undo(session):
    session.set_object(0)
    session.set_rotation(2)
    session.set_arm("probe-axes")
    p = session.prediction()
    assert p["arm"] == "probe-axes" and torch.equal(p["pred"], p["arms"]["probe-axes"]["pred"])
    assert session.snapshot()["pred"] is p["pred"]
    assert p["arms"]["probe-axes"]["error_deg"] < 20  # the field's own occupancy, aligned: near the truth


def test_bad_selection_is_one_sentence_and_changes_nothing(session, one_sentence):
    before = (session.object, session.rotation, session.reference, session.color_by, session.version)
    for call in (lambda: session.set_arm("guess"), lambda: session.set_object(OBJECTS), lambda: session.set_rotation(ROTATIONS),
                 lambda: session.set_reference(-1), lambda: session.set_color_by("size"), lambda: session.set_yaw(999)):
        with pytest.raises(RedcubeError) as e:
            call()
        one_sentence(str(e.value))
    assert (session.object, session.rotation, session.reference, session.color_by, session.version) == before


def test_undo_convention_on_the_exact_fields(scene, tiny_weightspace):
    """Undoing q_rel = q_sel q_ref^-1 turns the analytic field of rotation q_sel into that of q_ref exactly;
    the inverse (a wrong convention) does not."""
    from training.ngp_dataset import load_fields

    f, _ = load_fields(tiny_weightspace[1])
    q_ref, q_sel = f["quaternions"][3], f["quaternions"][5]  # object 1, rotations 0 and 2
    obj = polycube(object_seed(0, 1))
    box = make_field(_config(tiny_weightspace), f["params"][3]).box
    pose = orbit_pose(scene, 35.0)
    draw = lambda fn: render_field(fn, box, pose, 48, 96, 1, scene)
    ref = draw(analytic_density(obj, q_ref, 400.0))
    sel = analytic_density(obj, q_sel, 400.0)
    right = draw(undo_rotation(sel, multiply(q_sel, conjugate(q_ref)), scene.cube_center, box))
    wrong = draw(undo_rotation(sel, multiply(conjugate(q_ref), q_sel), scene.cube_center, box))
    assert psnr(right, ref) > 40 and psnr(wrong, ref) < 25


def _config(pair):
    import json

    from renderer.models.object_field import ObjectFieldConfig

    return ObjectFieldConfig(**json.loads((pair[1] / "dataset.json").read_text())["settings"]["field"])


def test_undo_by_true_rotation_lines_the_fitted_field_up_with_the_reference(session):
    session.set_object(0)
    session.set_rotation(2)
    snap = session.snapshot()
    r = render_four(snap, session.scene)
    assert set(r["images"]) == {"selected", "reference", "undo_pred", "undo_true"}
    assert r["slices"].shape[0] == 8 and r["slices"].shape[-1] == 3 and r["slices"].std() > 0.05
    sel, ref = (torch.from_numpy(r["images"][k]) for k in ("selected", "reference"))
    assert sel.std() > 0.05 and psnr(sel, ref) < 22  # the object shows, rotated away from the reference
    wrong = render_four({**snap, "true": conjugate(snap["true"])}, session.scene)  # the inverse rotation
    # measured on this pair: 29.7 dB undone by the true rotation, 12.9 by its inverse, 14.0 not undone at all
    # (over every object and rotation of it: 24.4-30.5 true, 12.9-19.0 inverse)
    assert r["psnr"]["undo_true"] > 22 and wrong["psnr"]["undo_true"] < 18
    assert r["moment_error_deg"] < 20 < wrong["moment_error_deg"]  # the principal-axes reference agrees with the truth


def test_bad_pairs_are_one_sentence_and_keep_the_loaded_one(session, tiny_weightspace, tmp_path, scene, one_sentence):
    from renderer.models import build_model
    from renderer.models.object_field import ObjectFieldConfig
    from training.checkpoint import save_checkpoint

    posemlp = save_checkpoint(tmp_path / "net.safetensors", build_model("posemlp", {"width": 8, "layers": 1}, scene), scene, step=1)
    other = tmp_path / "other"
    generate(DatasetConfig(objects=1, rotations=2, fit=FitConfig(steps=1, points=64), field=ObjectFieldConfig(width=16)),
             other, log=lambda s: None)
    ckpt, data = tiny_weightspace
    kept = session.loaded
    for pair, words in (((posemlp, data), "not a weight-space"), ((ckpt, other), "different hash-grid/MLP layout"),
                        ((ckpt, tmp_path / "nowhere"), "not a directory"), ((tmp_path / "none.safetensors", data), None)):
        with pytest.raises(RedcubeError, match=words) as e:
            session.load(*pair)
        one_sentence(str(e.value))
    session.grid = str(tmp_path / "nowhere.safetensors")
    with pytest.raises(RedcubeError, match="grid-arm checkpoint") as e:
        session.load()
    one_sentence(str(e.value))
    assert session.loaded is kept
    shipped = RotationsSession(scene, tmp_path / "ws" / "checkpoint.safetensors", tmp_path / "ws" / "fields")
    with pytest.raises(RedcubeError, match="no weight-space model is shipped") as e:  # the default pair, not there yet
        shipped.load()
    one_sentence(str(e.value))


def test_axis_angle_and_pca_helpers():
    axis, angle = axis_angle(torch.tensor([0.0, 0.0, 0.0, -1.0]))  # 180 deg about -z is 180 deg about +z
    assert angle == pytest.approx(180.0) and abs(axis[2]) == pytest.approx(1.0)
    assert axis_angle(torch.tensor([1.0, 0, 0, 0])) == ((1.0, 0.0, 0.0), 0.0)
    x = torch.randn(20, 2) @ torch.randn(2, 6)  # points on a plane in 6-D: two components keep every distance
    y = pca2(x)
    assert y.shape == (20, 2) and torch.allclose(torch.cdist(y, y), torch.cdist(x, x), atol=1e-4)
    assert y[:, 0].var() >= y[:, 1].var() and abs(float(y[:, 0] @ y[:, 1])) < 1e-3  # ordered, uncorrelated


DRIVER = """
import numpy as np
from app.gui.rotations_view import RES

app = App(width=1560, height=980)
r = app.tabs["rotations"].session
r.checkpoint, r.data, r.grid = {ckpt!r}, {data!r}, {grid!r}   # what the path inputs hold
dpg.set_value("_tabs", "_tab_rotations")     # open the tab: it loads the pair and starts rendering
out = {{}}

def pictures():
    wait_for(lambda: app.tabs["rotations"].view.frame is not None and app.tabs["rotations"].view.frame.key[0] == r.version
             and app.tabs["rotations"].view.frame.res == RES)     # the full-resolution set, after the quick one
    frames(3)
    return app.tabs["rotations"].view.frame

wait_for(lambda: r.loaded is not None and r.loading is None)
kept = r.loaded
g = app.guard
r.data = "/nope/fields"
g(app.tabs["rotations"].load)()                      # the Load button, with a missing data set
wait_for(lambda: r.loading is None and app.messages[-1].level == "error", 30)
out["load_error"] = app.messages[-1].text
out["kept"] = r.loaded is kept
g(r.set_object)(9)                           # the object slider's handler, out of range
out["object_error"] = app.messages[-1].text
g(r.set_object)(1)
g(r.set_rotation)(2)
g(r.set_color_by)("rotation")                # the colour-by radio's handler
g(r.set_arm)("probe-axes")                   # the arm radio's handler
f = pictures()
out["rotation_text"] = dpg.get_value("_text_rot_rotation")
out["describe"] = r.describe()
out["std"] = {{k: float(v.std()) for k, v in f.images.items()}}
out["shown"] = {{k: list(app._shown[k][0].shape) for k in ("left", "right", "third", "rot_undo_true", "rot_slice_0")}}
out["display"] = app.view.display
out["series"] = len(dpg.get_item_children("_axis_rot_y", 1))
out["sliders"] = [dpg.get_value(f"_slider_rot_{{k}}") for k in ("object", "rotation", "reference")]
x, y = dpg.get_item_rect_min("_image_left")   # the big viewport: selected, reference, undone
out["image_min"] = [int(x), int(y)]
app.screenshot({shot!r})
frames(3)
yaw0 = r.yaw_deg
app.on_keys({{"q"}}, 0.1)                       # Q turns the flying camera: the orbit follows
app.step()
f2 = pictures()
out["orbit"] = [r.yaw_deg - yaw0, float(np.abs(f2.images["selected"] - f.images["selected"]).mean())]
dpg.set_y_scroll("_child_tab_rotations", dpg.get_y_scroll_max("_child_tab_rotations"))   # the PCA plot, further down the tab
frames(4)
out["plot_min"] = [int(v) for v in dpg.get_item_rect_min("_plot_rot_pca")]
out["plot_size"] = [int(v) for v in dpg.get_item_rect_size("_plot_rot_pca")]
app.screenshot({shot2!r})
finish(out, 3)
"""


def test_rotations_panel_in_the_app(tiny_weightspace, tmp_path, one_sentence):
    import imageio.v3 as iio

    shot, shot2 = tmp_path / "rotations.png", tmp_path / "rotations_pca.png"
    out = run_driver(DRIVER.format(ckpt=str(tiny_weightspace[0]), data=str(tiny_weightspace[1]), grid=str(grid_of(tiny_weightspace)),
                                   shot=str(shot), shot2=str(shot2)), tmp_path)
    assert "not a directory" in out["load_error"] and out["kept"]  # a missing data set: a message, the pair stays
    assert "object 9" in out["object_error"]
    for text in (out["load_error"], out["object_error"]):
        one_sentence(text)
    assert out["sliders"] == [1, 2, 0]
    assert out["rotation_text"].startswith("relative rotation, reference 0 -> rotation 2")
    assert out["describe"] in out["rotation_text"] and "> probe-axes" in out["rotation_text"]
    assert "principal-axes reference, no learning" in out["rotation_text"]
    assert all(s > 0.02 for s in out["std"].values()), out["std"]  # every render shows the object
    third = 2 * out["display"] // 3  # three pictures fill the big viewport's width
    assert [out["shown"][k] for k in ("left", "right", "third")] == [[third, third, 3]] * 3
    assert out["shown"]["rot_undo_true"][:2] == [88, 88]  # the side panel holds a thumbnail only
    assert out["orbit"][0] > 5 and out["orbit"][1] > 0.001  # the flying camera's turn orbits the fields
    assert out["series"] >= 3  # angle bins, plus the reference and selected highlights
    img = iio.imread(shot)[..., :3].astype(np.float32)
    x, y = out["image_min"]
    panel = img[y:y + third, x:x + 3 * third]
    assert panel.std() > 5  # pictures on screen, not the blank placeholders
    (px, py), (pw, ph) = out["plot_min"], out["plot_size"]
    plot = iio.imread(shot2)[py:py + ph, px:px + pw, :3].astype(np.float32)
    assert ph > 100 and plot.shape[0] == ph and plot.std() > 5  # the PCA plot is on screen once scrolled to
