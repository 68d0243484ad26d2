"""`redcube bench`: speed figures and side-by-side ratios as JSON."""

from __future__ import annotations

import sys
from pathlib import Path

from app.bench import GROUPS, run_bench
from app.options import add_scene_option, check_writable, print_json, scene_from
from renderer.errors import RedcubeError


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure speeds; JSON with figures and side-by-side ratios")
    p.add_argument("--only", action="append", default=None, metavar="GROUP",
                   help=f"run only this group (repeatable): {', '.join(GROUPS)}")
    p.add_argument("--json", type=Path, default=None, help="write the JSON here too")
    add_scene_option(p)


def run(args) -> int:
    unknown = sorted(set(args.only or []) - set(GROUPS))
    if unknown:
        raise RedcubeError(f"unknown bench group(s) {unknown}; choose from {list(GROUPS)}.")
    check_writable(args.json)  # before minutes of measuring
    result = run_bench(args.only, scene_from(args), log=lambda m: print(m, file=sys.stderr))
    print_json(result, args.json)
    return 0
