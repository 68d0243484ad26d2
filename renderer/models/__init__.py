"""Model registry: every renderer network by name, with its config dataclass.

Later models (latent, mNIF) add one line to `MODELS`.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from renderer.errors import RedcubeError
from renderer.models.mnif import MNIF, MNIFConfig
from renderer.models.posemlp import PoseMLP, PoseMLPConfig
from renderer.models.radiance import RadianceField, RadianceFieldConfig
from renderer.models.siren import Siren, SirenConfig
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
    names = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(overrides or {}) - names)
    if bad:
        raise RedcubeError(f"{kind} has no setting(s) {bad}; valid ones are {sorted(names)}.")
    return cls(**(overrides or {}))


def build_model(kind: str, config: dict | object | None, scene: Scene) -> nn.Module:
    """Instantiate model `kind` from a config dataclass or a dict of overrides."""
    if not dataclasses.is_dataclass(config):
        config = model_config(kind, config)
    model = MODELS[kind][1](config, scene)
    model.kind = kind
    return model
