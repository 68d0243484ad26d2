"""Losses of the weight-space autoencoder (seed 004, sec. 4.5). So far: the rotation term, eq. (5).

  q_true = q_aug * q_orig^-1                       the relative rotation between two views of one object
  L_rot  = (2 arccos |q_true . q_pred|)^2          squared geodesic distance on SO(3); q and -q are one rotation

The angle is computed as 2 atan2(|v|, |w|) of the relative quaternion (`renderer.quaternions.angle_between`),
which equals 2 arccos |q_true . q_pred| for unit quaternions but stays exact and differentiable near 0, where
arccos's gradient blows up. q_pred need not be normalised: the loss normalises it.
"""

from __future__ import annotations

import torch

from renderer.quaternions import angle_between, conjugate, multiply


def relative_rotation(q_orig: torch.Tensor, q_aug: torch.Tensor) -> torch.Tensor:
    """q_aug * q_orig^-1 [..., 4]: the rotation taking the original view's object to the augmented view's."""
    return multiply(q_aug, conjugate(q_orig))


def geodesic_loss(q_pred: torch.Tensor, q_true: torch.Tensor) -> torch.Tensor:
    """Mean squared geodesic angle (rad^2) between predicted [B, 4] (any norm) and true unit quaternions [B, 4]."""
    return angle_between(q_true, q_pred).square().mean()
