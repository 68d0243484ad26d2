"""Ground truth: the cube world rasterized with moderngl, headless through EGL.

The EGL context lives on one dedicated thread owned by `Rasterizer` (DESIGN.md: an EGL context and
dearpygui's GLX window must not share a thread). Callers on any thread get numpy frames back.
Anti-aliasing: each frame is drawn at res * supersample and box-filtered down, so a target pixel is
the mean colour over its footprint, a well-defined function of the pose.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import numpy as np
import torch

from renderer.camera import POSE_DIM, check_res, projection_matrix, view_matrix
from renderer.errors import RedcubeError
from renderer.scene import Scene

EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri"
_CLOSED = "this rasterizer has been closed; create a new Rasterizer to render."

_VERTEX = """
#version 330
uniform mat4 view;
uniform mat4 proj;
in vec3 in_pos;
in vec3 in_normal;
out vec3 v_world;
out vec3 v_normal;
out float v_depth;
void main() {
    v_world = in_pos;
    v_normal = in_normal;
    vec4 eye = view * vec4(in_pos, 1.0);
    v_depth = -eye.z;
    gl_Position = proj * eye;
}
"""

# One shader for plane and cube: `is_ground` picks grid lines or Lambert + ambient shading.
# Cube faces are drawn from both sides (no culling) so a camera inside the cube sees its walls.
_FRAGMENT = """
#version 330
uniform bool is_ground;
uniform vec3 ground_color;
uniform vec3 grid_color;
uniform float grid_half_width;
uniform vec3 cube_color;
uniform vec3 light_dir;
uniform float ambient;
in vec3 v_world;
in vec3 v_normal;
in float v_depth;
out vec4 f_color;
void main() {
    vec3 c;
    if (is_ground) {
        vec2 d = abs(fract(v_world.xz + 0.5) - 0.5);
        c = min(d.x, d.y) < grid_half_width ? grid_color : ground_color;
    } else {
        float lambert = abs(dot(normalize(v_normal), light_dir));
        c = cube_color * (ambient + (1.0 - ambient) * lambert);
    }
    f_color = vec4(c, v_depth);  // alpha carries eye-space depth
}
"""

# Box filter: each output pixel averages its ss x ss block of the supersampled frame (colour and depth).
_DOWNSAMPLE_VERTEX = """
#version 330
in vec2 in_xy;
void main() { gl_Position = vec4(in_xy, 0.0, 1.0); }
"""
_DOWNSAMPLE_FRAGMENT = """
#version 330
uniform sampler2D frame;
uniform int ss;
out vec4 f_out;
void main() {
    ivec2 base = ivec2(gl_FragCoord.xy) * ss;
    vec4 acc = vec4(0.0);
    for (int i = 0; i < ss; i++)
        for (int j = 0; j < ss; j++)
            acc += texelFetch(frame, base + ivec2(i, j), 0);
    f_out = acc / float(ss * ss);
}
"""


def yaw_matrix(yaw_deg: float) -> np.ndarray:
    """3x3 rotation about +Y by yaw_deg (camera-yaw sense: (0, 0, -1) turns towards -X)."""
    a = np.radians(yaw_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _cube_triangles(center, size, yaw_deg: float = 0.0) -> np.ndarray:
    """[36, 6] vertices (position, normal) of a cube turned by yaw_deg about the vertical axis through its centre."""
    c, h = np.asarray(center, dtype=np.float64), size / 2
    out = []
    for axis in range(3):
        a, b = [i for i in range(3) if i != axis]
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = sign
            for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, -1), (1, 1), (-1, 1)):  # the face's two triangles
                p = c.copy()
                p[axis] += sign * h
                p[a] += sa * h
                p[b] += sb * h
                out.append(np.concatenate([p, n]))
    out = np.array(out)
    rot = yaw_matrix(yaw_deg)
    out[:, :3] = (out[:, :3] - c) @ rot.T + c
    out[:, 3:] = out[:, 3:] @ rot.T
    return out.astype("f4")


def _ground_triangles(half) -> np.ndarray:
    q = [(-half, 0, -half), (half, 0, -half), (half, 0, half), (-half, 0, half)]
    return np.array([(*q[i], 0, 1, 0) for i in (0, 1, 2, 0, 2, 3)], dtype="f4")


class _GLState:
    """Everything that touches OpenGL; created and used on the rasterizer thread only."""

    def __init__(self, scene: Scene):
        import moderngl

        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as e:
            raise RedcubeError(
                f"headless OpenGL (EGL) is not available ({e}); install the Debian packages: apt-get install -y {EGL_PACKAGES}."
            ) from None
        self.scene = scene
        ctx = self.ctx
        self.prog = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        light = np.asarray(scene.light_dir, dtype=np.float64)
        self.prog["light_dir"].value = tuple(light / np.linalg.norm(light))
        self.prog["ambient"].value = scene.ambient
        self.prog["ground_color"].value = tuple(scene.ground_color)
        self.prog["grid_color"].value = tuple(scene.grid_color)
        self.prog["grid_half_width"].value = scene.grid_line_width / 2
        self.prog["cube_color"].value = tuple(scene.cube_color)
        self.ground = self._vao(_ground_triangles(scene.ground_half_size))
        self.cube = self._vao(_cube_triangles(scene.cube_center, scene.cube_size, scene.cube_yaw_deg))
        self.prog["proj"].write(projection_matrix(scene).T.astype("f4").tobytes())  # GL wants column-major
        self.down = ctx.program(vertex_shader=_DOWNSAMPLE_VERTEX, fragment_shader=_DOWNSAMPLE_FRAGMENT)
        quad = np.array([-1, -1, 3, -1, -1, 3], dtype="f4")  # one triangle covering the viewport
        self.down_vao = ctx.vertex_array(self.down, [(ctx.buffer(quad.tobytes()), "2f", "in_xy")])
        self.targets: dict[tuple[int, int], tuple] = {}
        self.max_size = min(ctx.info["GL_MAX_RENDERBUFFER_SIZE"], ctx.info["GL_MAX_TEXTURE_SIZE"])

    def set_cube(self, scene: Scene) -> None:
        """Replace the cube (centre, size, yaw, colour) in place: a family of worlds without a new GL context each."""
        self.cube.release()
        self.cube = self._vao(_cube_triangles(scene.cube_center, scene.cube_size, scene.cube_yaw_deg))
        self.prog["cube_color"].value = tuple(scene.cube_color)
        self.scene = scene

    def _vao(self, verts: np.ndarray):
        vbo = self.ctx.buffer(verts.tobytes())
        return self.ctx.vertex_array(self.prog, [(vbo, "3f 3f", "in_pos", "in_normal")])

    def _targets(self, res: int, ss: int) -> tuple:
        """(supersampled framebuffer, its colour texture, res x res output framebuffer), cached."""
        if (res, ss) not in self.targets:
            ctx, size = self.ctx, res * ss
            tex = ctx.texture((size, size), 4, dtype="f4")
            big = ctx.framebuffer(color_attachments=[tex], depth_attachment=ctx.depth_renderbuffer((size, size)))
            small = ctx.framebuffer(color_attachments=[ctx.renderbuffer((res, res), components=4, dtype="f4")])
            self.targets[(res, ss)] = (big, tex, small)
        return self.targets[(res, ss)]

    def render(self, poses: np.ndarray, res: int, supersample: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        import moderngl

        ss = self.scene.supersample if supersample is None else supersample
        ss = max(1, min(ss, self.max_size // res))
        big, tex, small = self._targets(res, ss)
        ctx = self.ctx
        ctx.disable(moderngl.CULL_FACE)
        self.down["ss"].value = ss
        out = np.empty((len(poses), res, res, 4), dtype=np.float32)
        for i, pose in enumerate(poses):
            self.prog["view"].write(view_matrix(torch.from_numpy(pose)).T.astype("f4").tobytes())
            big.use()
            ctx.enable(moderngl.DEPTH_TEST)
            big.clear(*self.scene.sky_color, self.scene.far, depth=1.0)
            self.prog["is_ground"].value = True
            self.ground.render()
            self.prog["is_ground"].value = False
            self.cube.render()
            small.use()
            ctx.disable(moderngl.DEPTH_TEST)
            tex.use(0)
            self.down_vao.render()
            out[i] = np.frombuffer(small.read(components=4, dtype="f4"), dtype=np.float32).reshape(res, res, 4)
        out = out[:, ::-1]  # GL rows run bottom-up
        return np.ascontiguousarray(out[..., :3]), np.ascontiguousarray(out[..., 3])


class Rasterizer:
    """Renders ground truth for a batch of poses on a private EGL thread.

    `render(poses, res)` takes poses [B, 5] (or one pose [5]) and returns float32 RGB [B, res, res, 3]
    in [0, 1] and depth [B, res, res] in metres along the view axis (sky pixels hold `scene.far`).
    """

    def __init__(self, scene: Scene):
        self.scene = scene
        self._jobs: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="redcube-egl", daemon=True)
        self._thread.start()
        self._run(lambda gl: None)  # builds the GL state: re-raises a missing-EGL error in the caller's thread

    def _loop(self) -> None:
        gl = None
        while True:
            job, fut = self._jobs.get()
            if job == "stop":
                if gl is not None:
                    gl.ctx.release()
                fut.set_result(None)
                while not self._jobs.empty():  # a render queued while closing must not wait forever
                    self._jobs.get_nowait()[1].set_exception(RedcubeError(_CLOSED))
                return
            try:
                if gl is None:
                    gl = _GLState(self.scene)
                fut.set_result(job(gl))
            except BaseException as e:  # hand every failure back to the caller
                fut.set_exception(e)

    def render(self, poses, res: int, supersample: int | None = None, world: Scene | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames for poses [B, 5] or [5]; `supersample` overrides the scene's factor (1 = aliased, fast).
        `world`: render another world of the family (only its cube differs) in the same job, then put the
        current cube back, so other threads sharing this rasterizer never see it."""
        res = check_res(res)
        if world is not None:
            self._check_world(world)
        if supersample is not None and (not isinstance(supersample, (int, np.integer)) or not 1 <= supersample <= 8):
            raise RedcubeError(f"supersample {supersample!r} is invalid; choose a whole number from 1 to 8.")
        p = np.asarray(poses, dtype=np.float32)
        single = p.ndim == 1
        p = p.reshape(-1, POSE_DIM)
        rgb, depth = self._run(lambda gl: self._render_job(gl, p, res, supersample, world))
        return (rgb[0], depth[0]) if single else (rgb, depth)

    def _render_job(self, gl: _GLState, poses: np.ndarray, res: int, supersample: int | None, world: Scene | None):
        """On the EGL thread: one job, so no other caller's render sees the borrowed cube."""
        if world is None or world == gl.scene:
            return gl.render(poses, res, supersample)
        own = gl.scene
        gl.set_cube(world)
        try:
            return gl.render(poses, res, supersample)
        finally:
            gl.set_cube(own)

    def _check_world(self, scene: Scene) -> None:
        cube = {"cube_center", "cube_size", "cube_yaw_deg", "cube_color"}
        a, b = self.scene.to_dict(), scene.to_dict()
        if any(a[k] != b[k] for k in a if k not in cube):
            raise RedcubeError("a world of the family may differ from the rasterizer's scene only in its cube; "
                               "create a new Rasterizer for a scene with other settings.")

    def set_world(self, scene: Scene) -> None:
        """Switch to a scene that differs from the current one only in its cube (renderer.worlds' family)."""
        self._check_world(scene)
        self._run(lambda gl: gl.set_cube(scene))
        self.scene = scene

    def _run(self, job):
        """`job(gl)` on the EGL thread; its result, or its exception raised in the caller's thread."""
        if self._closed:
            raise RedcubeError(_CLOSED)
        fut: Future = Future()
        self._jobs.put((job, fut))
        return fut.result()

    def close(self) -> None:
        self._closed = True
        if self._thread.is_alive():
            fut: Future = Future()
            self._jobs.put(("stop", fut))
            fut.result()

    def __enter__(self) -> "Rasterizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
