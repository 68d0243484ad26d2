"""Model registry: every renderer network by name, with its config dataclass."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from renderer.errors import RedcubeError
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.models.posemlp import PoseMLP, PoseMLPConfig
from renderer.models.radiance import RadianceField, RadianceFieldConfig
from renderer.models.siren import Siren, SirenConfig
from renderer.numbers import check_number
from renderer.scene import Scene

MODELS: dict[str, tuple[type, type[nn.Module]]] = {
    "posemlp": (PoseMLPConfig, PoseMLP),
    "siren": (SirenConfig, Siren),
    "ngp": (RadianceFieldConfig, RadianceField),
    "mnif": (MNIFConfig, MNIF),
}
PIXEL_MODELS = ("posemlp", "siren", "ngp")
"""Models that render a camera's pixels from (pose, uv) alone: what `redcube train` and the app's training
panel offer. An mNIF also needs a world's latent; it is trained by `redcube train-mnif`."""


def model_config(kind: str, overrides: dict | None = None):
    """The config dataclass of model `kind` with `overrides` applied; unknown names get one clear sentence."""
    if kind not in MODELS:
        raise RedcubeError(f"unknown model {kind!r}; choose one of {sorted(MODELS)}.")
    cls = MODELS[kind][0]
    if overrides is not None and not isinstance(overrides, dict):
        raise RedcubeError(f"the {kind} model config must be a mapping of settings, got {type(overrides).__name__}; fix the config.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(set(overrides or {}) - set(fields))
    if bad:
        raise RedcubeError(f"{kind} has no setting(s) {bad}; valid ones are {sorted(fields)}.")
    for name, value in (overrides or {}).items():
        _check_setting(kind, name, fields[name].default, value)
    return cls(**(overrides or {}))


MAX_INT_SETTING = 2 ** 16
"""No integer setting (width, layers, levels, samples ...) is meaningful above this; larger ones only exhaust memory."""
MAX_PARAMETERS = 200_000_000
"""About 0.8 GB of float32 weights, before the optimizer's two copies: far above every model here."""


def _check_setting(kind: str, name: str, default, value) -> None:
    """A setting's value has its default's type (bool, whole number, finite float32 number, text) and a sane size."""
    where = f"{kind} setting {name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RedcubeError(f"{where} must be true or false, got {value!r}; pass e.g. --set {name}=true.")
    elif isinstance(default, int):
        check_number(where, value, -MAX_INT_SETTING, MAX_INT_SETTING, integer=True)
        if not isinstance(value, int) or isinstance(value, bool):
            raise RedcubeError(f"{where} must be a whole number, got {value!r}; pass e.g. --set {name}={default}.")
    elif isinstance(default, float):
        check_number(where, value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise RedcubeError(f"{where} must be text, got {value!r}; pass e.g. --set {name}={default}.")


def check_size(kind: str, config, scene: Scene) -> None:
    """Refuse a model too large to allocate, counted on the meta device (no memory used) before it is built."""
    try:
        with torch.device("meta"):
            n = sum(p.numel() for p in MODELS[kind][1](config, scene).parameters())
    except RedcubeError:
        raise
    except Exception:
        return  # a backend that cannot be built on the meta device is counted when it is built for real
    if n > MAX_PARAMETERS:
        raise RedcubeError(f"this {kind} config has {n:,} parameters, over the {MAX_PARAMETERS:,} redcube allows; "
                           "choose a smaller width, layer count or table size.")


def build_model(kind: str, config: dict | object | None, scene: Scene) -> nn.Module:
    """Instantiate model `kind` from a config dataclass or a dict of overrides (its size checked first)."""
    if not dataclasses.is_dataclass(config):
        config = model_config(kind, config)
    check_size(kind, config, scene)
    model = MODELS[kind][1](config, scene)
    model.kind = kind
    return model
