"""Asymmetric polycubes, unit quaternions and the object's analytic field under a rotation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from renderer.errors import RedcubeError
from renderer.polycubes import (CUBE_ROTATIONS, DIRECTIONS, MAX_CELLS, MIN_CELLS, polycube, polycube_field,
                                symmetries, to_cells, to_world)
from renderer.quaternions import angle_between, check_quaternion, matrix, multiply, random_quaternions
from renderer.scene import Scene

pytestmark = pytest.mark.usefixtures("one_thread")

LINE = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])


def test_cube_group_has_24_rotations():
    assert len(CUBE_ROTATIONS) == 24 and (CUBE_ROTATIONS[0] == np.eye(3)).all()
    assert all(round(np.linalg.det(r)) == 1 for r in CUBE_ROTATIONS)
    assert len({r.tobytes() for r in CUBE_ROTATIONS}) == 24


def test_asymmetry_check_rejects_symmetric_objects():
    assert len(symmetries(LINE)) == 7  # a rod: 3 turns about its axis, 4 flips end over end

    def keeps_colours(rot, color_ids):  # rot maps each face direction onto one of the same colour
        image = [int(np.flatnonzero((DIRECTIONS == rot @ d).all(1))[0]) for d in DIRECTIONS]
        return all(color_ids[image[k]] == color_ids[k] for k in range(6))

    assert all(keeps_colours(r, np.zeros(6, int)) for r in symmetries(LINE))  # one colour everywhere keeps them all
    assert not any(keeps_colours(r, np.arange(6)) for r in symmetries(LINE))  # six distinct colours break every one


def test_polycubes_are_seeded_asymmetric_and_fit_the_box():
    scene = Scene()
    objs = [polycube(s) for s in range(40)]
    assert all(MIN_CELLS <= len(o.cells) <= MAX_CELLS for o in objs)
    assert all(symmetries(o.cells) == [] for o in objs)
    assert np.array_equal(polycube(3).cells, objs[3].cells) and np.array_equal(polycube(3).colors, objs[3].colors)
    assert len({o.cells.tobytes() for o in objs}) > 20  # many different shapes
    for o in objs[:5]:
        assert len({tuple(c) for c in o.colors.round(3)}) == 6  # six distinct face colours
        corners = to_world(o, torch.tensor([1.0, 0, 0, 0]), torch.tensor(o.cells, dtype=torch.float64)[:, None, :].add(
            torch.tensor([[sx, sy, sz] for sx in (-.5, .5) for sy in (-.5, .5) for sz in (-.5, .5)], dtype=torch.float64)).reshape(-1, 3))
        assert (corners - torch.tensor(scene.cube_center, dtype=torch.float64)).norm(dim=1).max() <= scene.cube_size / 2 + 1e-9


def test_quaternions_are_unit_uniform_and_checked(one_sentence):
    q = random_quaternions(4000, seed=1)
    assert torch.allclose(q.norm(dim=-1), torch.ones(4000), atol=1e-6) and (q[:, 0] >= 0).all()
    rot = matrix(q)
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(4000, 3, 3), atol=1e-5)
    # uniform on SO(3): the angle's density is (1 - cos a) / pi, whose mean is pi/2 + 2/pi
    assert abs(float(angle_between(torch.tensor([1.0, 0, 0, 0]), q).mean()) - (np.pi / 2 + 2 / np.pi)) < 0.05
    assert torch.equal(random_quaternions(3, seed=1), random_quaternions(3, seed=1))
    a, b = q[0], q[1]
    assert torch.allclose(matrix(multiply(a, b)), matrix(a) @ matrix(b), atol=1e-5)
    for bad in ([1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [float("nan"), 0, 0, 1]):
        with pytest.raises(RedcubeError) as e:
            check_quaternion(bad)
        one_sentence(str(e.value))


def test_rotating_the_object_agrees_with_rotating_the_points():
    obj = polycube(5)
    q = random_quaternions(1, seed=2)[0]
    identity = torch.tensor([1.0, 0, 0, 0])
    g = torch.Generator().manual_seed(0)
    p = torch.tensor(obj.center) + (torch.rand(20000, 3, generator=g) - 0.5)
    occ_rot, rgb_rot = polycube_field(obj, q, p)
    center = torch.tensor(obj.center)
    back = (p - center) @ matrix(q) + center  # R^T (p - c) + c: the same points in the unrotated object's frame
    occ0, rgb0 = polycube_field(obj, identity, back)
    assert 0.02 < float(occ_rot.mean()) < 0.5
    assert (occ_rot != occ0).float().mean() < 1e-3 and (rgb_rot - rgb0).abs().max(1).values.gt(1e-4).float().mean() < 1e-3
    assert not torch.equal(occ_rot, polycube_field(obj, identity, p)[0])  # and the rotation really moves the object


def test_field_colours_each_outer_face_by_its_direction():
    obj = polycube(7)
    identity = torch.tensor([1.0, 0, 0, 0])
    own = {tuple(c) for c in obj.cells}
    for cell in obj.cells:
        for k, d in enumerate(DIRECTIONS):
            if tuple(cell + d) in own:
                continue
            inside = torch.tensor(cell + 0.45 * d, dtype=torch.float32)[None] + 0.0
            occ, rgb = polycube_field(obj, identity, to_world(obj, identity, inside))
            assert occ.item() == 1 and torch.allclose(rgb[0], torch.from_numpy(obj.colors[k]))
            outside = to_world(obj, identity, torch.tensor(cell + 0.55 * d, dtype=torch.float32)[None])
            assert polycube_field(obj, identity, outside)[0].item() == 0
    p = torch.rand(50, 3)
    assert torch.allclose(to_cells(obj, identity, to_world(obj, identity, p)), p, atol=1e-5)
