"""Losses of the weight-space autoencoder (seed 004, sec. 4.5), for two views a, b (rotations) of each object.

  L_recon = |M . (T^ - T)|^2, mean over the real values of both views        eq. (3): padding and [POS] masked out
  L_NTX   = NT-Xent(p(z_a), p(z_b)), tau = 0.1, the batch's other objects as negatives      eq. (4)
  L_rot   = see below                                                                        eq. (5)
  L       = g1 L_recon + g2 L_NTX + g3 L_rot + g4 mean(Z^2),  g = (0.4, 0.05, 0.53, 0.02)    eq. (6)

The rotation term, eq. (5):

  q_true = q_aug * q_orig^-1                       the relative rotation between two views of one object
  L_rot  = (2 arccos |q_true . q_pred|)^2          squared geodesic distance on SO(3); q and -q are one rotation

The angle is computed as 2 atan2(|v|, |w|) of the relative quaternion (`renderer.quaternions.angle_between`),
which equals 2 arccos |q_true . q_pred| for unit quaternions but stays exact and differentiable near 0, where
arccos's gradient blows up. q_pred need not be normalised: the loss normalises it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from renderer.quaternions import angle_between, conjugate, multiply


def relative_rotation(q_orig: torch.Tensor, q_aug: torch.Tensor) -> torch.Tensor:
    """q_aug * q_orig^-1 [..., 4]: the rotation taking the original view's object to the augmented view's."""
    return multiply(q_aug, conjugate(q_orig))


def geodesic_loss(q_pred: torch.Tensor, q_true: torch.Tensor) -> torch.Tensor:
    """Mean squared geodesic angle (rad^2) between predicted [B, 4] (any norm) and true unit quaternions [B, 4]."""
    return angle_between(q_true, q_pred).square().mean()


GAMMAS = (0.4, 0.05, 0.53, 0.02)
"""Weights of recon, NT-Xent, rotation and latent L2 (the seed's, eq. 6)."""


def recon_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. (3): mean squared error over the real values (mask [C, D] true) of tokens [B, C, D]."""
    m = mask.to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * m).sum() / m.sum().clamp_min(1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Eq. (4): row i of a [B, K] and row i of b are the positive pair; the other 2B - 2 rows are negatives."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))
    n = len(a)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


def loss_terms(model, tokens_a: torch.Tensor, tokens_b: torch.Tensor, q_a: torch.Tensor, q_b: torch.Tensor,
               mask: torch.Tensor, gammas=GAMMAS, temperature: float = 0.1) -> tuple[torch.Tensor, dict]:
    """Eq. (6) for a batch of pairs: tokens [B, C, D] of two rotations q_a, q_b [B, 4] of the same B objects.
    `model` is a `training.weightspace.model.WeightSpaceAutoencoder`. Returns (total, {term: value})."""
    z_a, z_b = model.encode(tokens_a), model.encode(tokens_b)
    recon = 0.5 * (recon_loss(model.decode(z_a), tokens_a, mask) + recon_loss(model.decode(z_b), tokens_b, mask))
    ntx = nt_xent(model.embedding(z_a), model.embedding(z_b), temperature)
    rot = geodesic_loss(model.relative_rotation(z_a, z_b), relative_rotation(q_a, q_b))
    l2 = 0.5 * (z_a.square().mean() + z_b.square().mean())
    terms = {"recon": recon, "ntx": ntx, "rot": rot, "latent_l2": l2}
    total = sum(g * t for g, t in zip(gammas, terms.values()))
    return total, {k: float(v.detach()) for k, v in terms.items()}
