"""`redcube soak`: the window under Xvfb for N minutes with training beside it and the camera flying; JSON with
the app's RSS and its window and network frame rates at the start and the end."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.options import check_writable, print_json
from renderer.errors import RedcubeError
from renderer.numbers import check_number


def register(sub) -> None:
    p = sub.add_parser("soak", help="run the window with training beside it for N minutes; memory and frame rates at start and end")
    p.add_argument("--minutes", type=float, default=30.0, help="how long the camera flies (default 30)")
    p.add_argument("--checkpoint", type=Path, default=None, help="network on screen (default: the shipped one)")
    p.add_argument("--json", type=Path, default=None, help="write the JSON here too")


def run(args) -> int:
    from app.soak import soak

    check_number("--minutes", args.minutes, 0.5, 24 * 60)
    if shutil.which("xvfb-run") is None:
        raise RedcubeError("the soak runs the window under Xvfb, and xvfb-run is missing; install xvfb (apt-get install xvfb).")
    check_writable(args.json)  # before minutes of soaking
    result = soak(args.minutes, args.checkpoint)
    print_json(result, args.json)
    return 0 if "error" not in result else 1
