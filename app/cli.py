"""The `redcube` command line. Each subcommand lives in `app/commands/<name>.py`: `register(subparsers)` adds its
parser, and `run(args) -> int` runs it."""

from __future__ import annotations

import argparse
import importlib
import sys

from renderer.errors import RedcubeError

COMMANDS = ["render", "train", "eval", "experiment", "bench", "gui", "export-video", "sample-mnif", "eval-mnif", "ngp-dataset", "encode-latents", "eval-weightspace", "soak"]
"""Each with `register(subparsers)`; `train` also registers the old `train-vae`, `train-mnif` and `train-weightspace`."""


class Parser(argparse.ArgumentParser):
    """argparse with redcube's error form: one line, one sentence, rc 2 (subcommand parsers inherit it)."""

    def error(self, message: str):
        self.exit(2, f"redcube: error: {message}; see `{self.prog} --help`.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="redcube", description="A neural-rendering lab for the red cube world.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        command = importlib.import_module(f"app.commands.{name.replace('-', '_')}")
        command.register(sub)
        sub.choices[name].set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["gui"]:
        import app.gui  # noqa: F401  (its OpenMP setting must come before any command module imports torch)
    from app.commands.train import expand_aliases

    args = build_parser().parse_args(expand_aliases(argv))
    try:
        return int(args.func(args) or 0)
    except RedcubeError as e:
        print(f"redcube: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("redcube: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
