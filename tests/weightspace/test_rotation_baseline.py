"""The rotation reference that learns nothing (training.rotation_baseline) on two really fitted NGP fields of one polycube."""

from __future__ import annotations

import torch

from renderer.polycubes import polycube
from renderer.quaternions import conjugate, random_quaternions
from training.ngp_fields import FitConfig, fit_field
from training.rotation_baseline import moment_rotation, principal_axes, rotation_error_deg
from training.weightspace.losses import relative_rotation


def test_principal_axes_turn_with_the_points():
    g = torch.Generator().manual_seed(0)
    points, weight = torch.randn(2000, 3, generator=g) * torch.tensor([3.0, 2.0, 1.0]), torch.rand(2000, generator=g)
    r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0]
    _, before = principal_axes(points, weight)
    _, after = principal_axes(points.double() @ r.T, weight)
    assert torch.allclose((r @ before).abs(), after.abs(), atol=1e-6)  # the same axes, up to sign


def test_moment_rotation_recovers_the_relative_rotation_of_two_fitted_fields():
    obj, (q_a, q_b) = polycube(3), random_quaternions(2, 11)
    fit = FitConfig(steps=100, points=512)
    a, b = (fit_field(obj, q, fit, seed=s)[0] for s, q in enumerate((q_a, q_b)))
    r = moment_rotation(a, b)
    true = relative_rotation(q_a, q_b)
    assert rotation_error_deg(r, true) < 10.0 < 40.0 < rotation_error_deg(r, conjugate(true))
