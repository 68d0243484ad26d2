"""The dearpygui desktop app (`redcube gui`).

GUI-free parts: `state` (fly camera, view settings, shortcuts), `settings` (user config file), `training_session`,
`video_session`, `worlds_session` and `rotations_session` (the Training, Path & video, Worlds and Rotations tabs'
state), `workers`, `viewer`, `worlds_view`, `rotations_view` and `tab_parts` (background renders and the per-frame logic). Widgets: `app` (window,
handlers, frame loop), `layout`, `keys`, `tab` (the one interface of the side tabs), `panel_*` (one tab each), `widgets`
(shared widget helpers, `show_picture`) and `topdown` (the map). `bench` measures the window's frame rate for `redcube bench`.
Camera paths, picture composition and video export, which the command line uses too, live in `app.paths`,
`app.viewport` and `app.video`.
"""

import os
import sys

if "torch" not in sys.modules:
    # Before torch loads its OpenMP runtime: idle OpenMP threads sleep instead of spinning. In the window a render's
    # threads otherwise spin between regions and take the core that draws the window (measured under Xvfb while
    # flying: 27% of the process's CPU in libgomp's spin, network pictures 20 -> 31 per second with this).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
