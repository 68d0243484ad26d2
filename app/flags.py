"""Command-line flags from config dataclasses: a field's name, type, default and docstring become its flag, so a
default lives in one place (nerfstudio does this with tyro; this is the small part of it redcube needs).

`add_fields(parser, cls, prefix)` adds `--prefix-field-name` for every field (nested dataclasses as
`--field.sub-field`); `values(cls, args, prefix)` reads them back from the parsed namespace."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from functools import cache

SCALARS = (int, float, str, bool)


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (the string literal that follows its annotation), one line."""
    docs = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        except (OSError, TypeError):
            continue
        for node, after in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def _scalar(hint) -> type | None:
    """int, float, str or bool from a field's type (`X | None` counts as X); None for anything else."""
    if hint in SCALARS:
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 and rest[0] in SCALARS else None
    return None


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _dest(prefix: str, name: str) -> str:
    """The parsed namespace's attribute for a flag (`--fit.steps` -> `fit__steps`)."""
    return f"{prefix}{name}".replace("-", "_").replace(".", "__")


def add_fields(parser: argparse.ArgumentParser, cls: type, prefix: str = "", skip: tuple = (), aliases: dict | None = None,
               group: str | None = None, path: str = "", base=None) -> None:
    """A flag per field of `cls` (fields in `skip`, and dict-valued ones, left out); `aliases` maps a field (a dotted
    path for nested ones, e.g. "fit.steps") to older flag spellings that keep working. `base`: the instance whose
    values are the defaults (a nested config's default is its parent's, not its class's)."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    target = parser.add_argument_group(group) if group else parser
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        hint, default = hints[f.name], (getattr(base, f.name) if base is not None else _default(f))
        if dataclasses.is_dataclass(hint):
            add_fields(parser, hint, f"{prefix}{f.name.replace('_', '-')}.", aliases=aliases, group=group,
                       path=f"{path}{f.name}.", base=default)
            continue
        kind = _scalar(hint)
        if kind is None:
            continue  # dicts and lists have their own flags (e.g. `--set KEY=VALUE`)
        names = [f"--{prefix}{f.name.replace('_', '-')}", *(aliases or {}).get(path + f.name, ())]
        shown = "required" if default is dataclasses.MISSING else f"default: {default}"
        doc = docs.get(f.name, "").replace("%", "%%")
        kw = dict(dest=_dest(prefix, f.name), help=f"{doc} ({shown})")
        if default is dataclasses.MISSING:
            target.add_argument(*names, type=kind, required=True, **kw)
        elif kind is bool:
            target.add_argument(*names, action=argparse.BooleanOptionalAction, default=default, **kw)
        else:
            target.add_argument(*names, type=kind, default=default, metavar=kind.__name__.upper(), **kw)


def values(cls: type, args: argparse.Namespace, prefix: str = "", skip: tuple = ()) -> dict:
    """The parsed values of `cls`'s fields (nested dataclasses built), for `cls(**values, **others)`."""
    hints, out = typing.get_type_hints(cls), {}
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out[f.name] = hint(**values(hint, args, f"{prefix}{f.name.replace('_', '-')}."))
            continue
        if _scalar(hint) is not None and hasattr(args, _dest(prefix, f.name)):
            out[f.name] = getattr(args, _dest(prefix, f.name))
    return out
