"""The View tab's render-mode switch (pixels / latent -> TinyVAE 512²) in the real app under Xvfb, clicked with the X
server's XTEST extension like a mouse would: the missing-latent sentence, a switch to a tiny latent network and back,
and the next launch: the remembered latent network, and the shipped pixel one where the remembered one is gone.

The pixel network is test_gui's small posemlp; the latent one is conftest's `tiny_latent` (a random TinyVAE).
"""

from __future__ import annotations

import json

import imageio.v3 as iio

from app.gui.app import NO_NETWORK, default_checkpoint
from app.gui.settings import Settings, save_settings
from app.gui.state import NETWORK_KINDS
from test_gui import checkpoint, run_driver  # noqa: F401  (checkpoint: a fixture, a posemlp trained at 32²)


CLICK = """
def click(tag, entry):
    '''A left click on entry 0 or 1 of a horizontal two-entry radio, through the X server.'''
    (x, y), (w, h) = dpg.get_item_rect_min(tag), dpg.get_item_rect_size(tag)
    click_at(x + (8 if entry == 0 else w - 8), y + h / 2)

def on_screen():
    '''The loaded network and the radio once its newest frame is on screen; the resolutions its frames came at.'''
    seen = set()

    def settled():
        net = app.viewer.net
        if net is not None:
            seen.add((net.version, net.res))
        return app.slot.loading is None and net is not None and net.version == app.slot.current.version and app.viewer.idle()

    wait_for(settled)
    app.step()
    net, now = app.viewer.net, app.slot.current
    return {{"path": str(now.path), "vae": now.vae is not None, "radio": dpg.get_value("_radio_network"),
            "net_res": app.view.net_res, "frames": [sorted(r for v, r in seen if v == now.version), net.latent is not None]}}
"""

FIRST = CLICK + """
app = App(checkpoint=Path({pixels!r}))
app.defaults["latent"] = Path({gone!r})     # no shipped latent network yet
out = {{"start": on_screen()}}
click("_radio_network", 1)                   # latent: there is none
out["missing"] = on_screen()
out["messages"] = [[m.level, m.text] for m in app.messages]
app.defaults["latent"] = Path({latent!r})    # the shipped latent network has been trained
click("_radio_network", 1)
out["latent"] = on_screen()
out["image_right"] = [int(v) for v in dpg.get_item_rect_min("_image_right")] + [app.view.display]
app.screenshot({shot!r})
frames(3)
click("_radio_network", 0)                   # back to pixels: the one on screen before
out["pixels"] = on_screen()
app.defaults["latent"] = Path({gone!r})
click("_radio_network", 1)                   # latent again: the one this session showed, without a shipped one
out["latent_again"] = on_screen()
out["errors"] = [m.text for m in app.messages if m.level == "error"]
finish(out, 3)  # the window closes with the latent network on screen: the settings are saved
"""

SECOND = CLICK + """
app = App()                                  # opens the network of the last exit: the latent one
out = {{"start": on_screen()}}
click("_radio_network", 0)                   # the remembered pixel network is gone: the shipped one
out["pixels"] = on_screen()
out["errors"] = [m.text for m in app.messages if m.level == "error"]
finish(out, 3)
"""


def test_the_render_mode_switch_loads_the_network_of_each_kind(checkpoint, tiny_latent, tmp_path, one_sentence):
    pixels, latent, gone = str(checkpoint), str(tiny_latent), str(tmp_path / "gone.safetensors")
    shot = tmp_path / "view.png"
    out = run_driver(FIRST.format(pixels=pixels, latent=latent, gone=gone, shot=str(shot)), tmp_path, 60, xtest=True)
    shown_pixels = {"path": pixels, "vae": False, "radio": NETWORK_KINDS["pixels"], "net_res": 32, "frames": [[32], False]}
    assert out["start"] == shown_pixels
    assert out["missing"] == shown_pixels  # the pixel network stays, the radio says so
    level, text = out["messages"][-1]
    assert level == "warn" and text == NO_NETWORK["latent"] and "redcube train --latent --res 512" in text
    one_sentence(text)
    # The latent network is decoded by its TinyVAE at 512², its first three latent channels kept for the latent view;
    # each network's frames come at its own resolution only (none at the one before it: 512² pixels take seconds).
    assert out["latent"] == {"path": latent, "vae": True, "radio": NETWORK_KINDS["latent"], "net_res": 512, "frames": [[512], True]}
    assert out["pixels"] == shown_pixels and out["latent_again"] == out["latent"] and out["errors"] == []
    (x, y, s), img = out["image_right"], iio.imread(shot)[..., :3].astype("float32")
    assert abs(img[y:y + s, x:x + s] - 0.2 * 255).mean() > 10  # a decoded picture, not the grey no-network panel
    saved = json.loads((tmp_path / "config" / "redcube" / "settings.json").read_text())  # run_gui's XDG_CONFIG_HOME
    assert (saved["pixels_checkpoint"], saved["latent_checkpoint"], saved["checkpoint"]) == (pixels, latent, latent)


def test_the_next_launch_shows_the_remembered_latent_network_and_a_gone_pixel_one_falls_back(tiny_latent, tmp_path):
    latent, gone = str(tiny_latent), str(tmp_path / "gone.safetensors")
    remembered = Settings(checkpoint=latent, pixels_checkpoint=gone, latent_checkpoint=latent, view={"net_res": 512})
    assert save_settings(remembered, tmp_path / "config" / "redcube" / "settings.json") is None  # run_gui's XDG_CONFIG_HOME
    # the last exit showed the latent network; the pixel one was deleted
    out = run_driver(SECOND.format(gone=gone), tmp_path, 60, xtest=True)
    latent_shown = {"path": latent, "vae": True, "radio": NETWORK_KINDS["latent"], "net_res": 512, "frames": [[512], True]}
    assert out["start"] == latent_shown  # the radio follows what the launch opened, at the remembered 512²
    shipped = out["pixels"]
    assert shipped["path"] == str(default_checkpoint()) and shipped["radio"] == NETWORK_KINDS["pixels"]
    res = json.loads(default_checkpoint().with_suffix(".json").read_text())["train"]["res"]  # shown at its own resolution
    assert shipped["net_res"] == res and shipped["frames"] == [[res], False] and out["errors"] == []
