"""CPU kernels in C with OpenMP, compiled once by gcc and called through ctypes: the hash grid's forward
and backward, and the radiance field's occupancy march.

Hash grid: same semantics as `renderer.hashgrid.encode` / `scatter_terms` (tiny-cuda-nn's indexing, corner order
and level-major output), but one loop per point instead of [N, L, 8] temporaries, which is what a
memory-bound CPU needs:

  forward:  out[n, l F + f] = sum_k w_k(x_n) table[off_l + idx_k(x_n), f]          points in parallel
  backward: grad[off_l + idx_k(x_n), f] += w_k(x_n) g[n, l F + f]                    levels in parallel

Levels own disjoint rows of the table, so the backward splits the work by level and needs no atomics.

March (Instant-NGP sec. 4): each ray steps t_k = t0 + (k + u) dt through its span [t0, t1) and keeps the
steps whose occupancy cell is set, written compactly to the front of its row, so no [rays, all steps]
positions or cell lookups are ever materialised.

Render (inference only): march, hash grid, MLP and compositing fused per ray. A ray walks its occupied steps
front to back, evaluates the field at each (no [samples, features] tensor ever exists), composites as it goes
and stops as soon as its optical depth passes the cut: in this opaque world a ray that has hit a surface is done
after one or two samples. It is built separately with -march=native -ffast-math (the hash grid's gathers, the MLP's
products and the exponentials vectorise to the machine's widest units; where that build does not link, a plain
one); the training kernels keep their portable flags and exact float semantics.
Loops are scheduled dynamically: on a shared machine a descheduled thread's work is taken over rather
waited for. The library goes to torch's extensions cache (~/.cache/torch_extensions/redcube_cpu_kernels), named by
the source's hash. Plain C with no torch headers builds in about a second, where the same kernels through
`torch.utils.cpp_extension.load_inline` took 47 s of CPU (4 minutes on the loaded 2-core machine).
Where the build fails (no compiler), `kernels()` returns None, logs why once, and the pure-PyTorch path runs.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_PRELUDE = r"""
#include <math.h>
#include <stdint.h>

typedef struct { float scale; int64_t res, size, offset, dense; } Level;
"""

_SOURCE = _PRELUDE + r"""
/* The 8 corner rows (into the whole table) and weights of point p on one level. */
static inline void corners(const float* p, const Level* lv, int smooth, int64_t rows[8], float w[8]) {
    int64_t c[3]; float a[3][2];
    for (int d = 0; d < 3; ++d) {
        float pos = p[d] * lv->scale + 0.5f;
        float b = floorf(pos);
        float f = pos - b;
        if (smooth) f = f * f * (3.0f - 2.0f * f);
        c[d] = (int64_t)b; a[d][0] = 1.0f - f; a[d][1] = f;
    }
    for (int k = 0; k < 8; ++k) {
        int64_t x = c[0] + (k & 1), y = c[1] + ((k >> 1) & 1), z = c[2] + ((k >> 2) & 1), idx;
        if (lv->dense) {  /* x, y, z <= res, so idx < 2 size: one subtraction is the modulo */
            idx = x + y * lv->res + z * lv->res * lv->res;
            if (idx >= lv->size) idx -= lv->size;
        } else {  /* hashed levels hold 2^T entries: the modulo is a mask */
            uint32_t h = (uint32_t)x ^ ((uint32_t)y * 2654435761u) ^ ((uint32_t)z * 805459861u);
            idx = (int64_t)(h & (uint32_t)(lv->size - 1));
        }
        rows[k] = lv->offset + idx;
        w[k] = a[0][k & 1] * a[1][(k >> 1) & 1] * a[2][(k >> 2) & 1];
    }
}

/* out [n, L F] = per level, the weighted sum of the 8 corners' rows of table [rows, F]. */
void encode_forward(const float* x, const float* table, float* out, int64_t n, const Level* lv, int64_t L,
                    int64_t F, int smooth, int threads) {
    #pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) {
        int64_t rows[8]; float w[8];
        for (int64_t l = 0; l < L; ++l) {
            corners(x + 3 * i, lv + l, smooth, rows, w);
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int k = 0; k < 8; ++k) {
                const float* row = table + rows[k] * F;
                for (int64_t f = 0; f < F; ++f) acc[f] += w[k] * row[f];
            }
            for (int64_t f = 0; f < F; ++f) out[(i * L + l) * F + f] = acc[f];
        }
    }
}

/* grad_table [rows, F] += the output gradient g [n, L F] spread back over the corners. */
void encode_backward(const float* x, const float* g, float* grad_table, int64_t n, const Level* lv, int64_t L,
                     int64_t F, int smooth, int threads) {
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t l = 0; l < L; ++l) {  /* levels own disjoint table rows: no two threads add to one place */
        int64_t rows[8]; float w[8];
        for (int64_t i = 0; i < n; ++i) {
            corners(x + 3 * i, lv + l, smooth, rows, w);
            const float* gi = g + (i * L + l) * F;
            for (int k = 0; k < 8; ++k) {
                float* row = grad_table + rows[k] * F;
                for (int64_t f = 0; f < F; ++f) row[f] += w[k] * gi[f];
            }
        }
    }
}

/* Per ray b: steps t = t0 + (k + u_b) dt while t < t1, kept where occupancy cell occ[cell(o + t d)] is set;
   the kept t go to out[b, 0 : counts[b]] (row stride K). Cells: box coordinates (p - lo) / size, clamped
   to [0, 1), times the grid shape, flattened x-major. */
void march(const float* o, const float* d, const float* t0, const float* t1, const float* u, float dt,
           const float* lo, const float* size, const uint8_t* occ, const int64_t* shape, int64_t n, int64_t K,
           float* out, int64_t* counts, int threads) {
    #pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
    for (int64_t b = 0; b < n; ++b) {
        int64_t c = 0;
        for (int64_t k = 0; k < K; ++k) {
            float t = t0[b] + ((float)k + u[b]) * dt;
            if (t >= t1[b]) break;
            int64_t cell = 0;
            for (int j = 0; j < 3; ++j) {
                float x = (o[3 * b + j] + t * d[3 * b + j] - lo[j]) / size[j];
                int64_t i = (int64_t)(x * (float)shape[j]);
                i = i < 0 ? 0 : (i >= shape[j] ? shape[j] - 1 : i);
                cell = cell * shape[j] + i;
            }
            if (occ[cell]) out[b * K + c++] = t;
        }
        counts[b] = c;
    }
}
"""

_RENDER_SOURCE = _PRELUDE + r"""
/* Sizes are compile-time constants (one build per field shape: NL levels of NF features, SMOOTH interpolation,
   NLAYERS dense layers of widths DIMS[0..NLAYERS], the widest MAXW), so the compiler unrolls and vectorises.
   Rays go in tiles of TILE: each round every live ray of the tile marches to its next occupied step, then the
   field runs on that batch of points with SIMD across points (hash-grid gathers, a small matrix product), then
   each ray composites its sample and stops once opaque. */
#define TILE 64

/* feat [NL NF][TILE] = the hash grid's features of box points x [3][TILE] (tiny-cuda-nn's corners, as in the
   training kernels: dense levels index the voxel grid, hashed ones the coherent prime hash). Points run along the
   last axis of both arrays, so the loop over them vectorises (the table reads become gathers); it is written once
   per index kind because a branch inside the loop stops the vectoriser. */
static inline float smoothed(float f) { return SMOOTH ? f * f * (3.0f - 2.0f * f) : f; }

#define DENSE_INDEX(cx, cy, cz) ({ int32_t i_ = (cx) + (cy) * res + (cz) * res * res; i_ >= size ? i_ - size : i_; })
#define HASH_INDEX(cx, cy, cz) ((int32_t)(((uint32_t)(cx) ^ ((uint32_t)(cy) * 2654435761u) ^ ((uint32_t)(cz) * 805459861u)) \
                                          & (uint32_t)(size - 1)))
#define ENCODE_LEVEL(INDEX)                                                                                         \
    _Pragma("omp simd")                                                                                             \
    for (int s = 0; s < m; ++s) {                                                                                   \
        /* pos >= 0.5: truncation is the floor, and unlike floorf it vectorises */                                  \
        float px = x[0][s] * scale + 0.5f, py = x[1][s] * scale + 0.5f, pz = x[2][s] * scale + 0.5f;               \
        int32_t c0 = (int32_t)px, c1 = (int32_t)py, c2 = (int32_t)pz;                                               \
        float a0 = smoothed(px - (float)c0), a1 = smoothed(py - (float)c1), a2 = smoothed(pz - (float)c2);          \
        float acc[NF] = {0};                                                                                        \
        _Pragma("GCC unroll 8")                                                                                     \
        for (int k = 0; k < 8; ++k) {                                                                               \
            int32_t idx = INDEX(c0 + (k & 1), c1 + ((k >> 1) & 1), c2 + ((k >> 2) & 1));                            \
            float w = ((k & 1) ? a0 : 1.0f - a0) * ((k & 2) ? a1 : 1.0f - a1) * ((k & 4) ? a2 : 1.0f - a2);       \
            int32_t row = (offset + idx) * NF;                                                                      \
            _Pragma("GCC unroll 8")                                                                                 \
            for (int f = 0; f < NF; ++f) acc[f] += w * table[row + f];                                              \
        }                                                                                                           \
        _Pragma("GCC unroll 8")                                                                                     \
        for (int f = 0; f < NF; ++f) feat[l * NF + f][s] = acc[f];                                                  \
    }

static void encode_batch(const float (*restrict x)[TILE], int m, const float* restrict table, const Level* lv,
                         float (*restrict feat)[TILE]) {
    for (int l = 0; l < NL; ++l) {
        const float scale = lv[l].scale;
        const int32_t res = (int32_t)lv[l].res, size = (int32_t)lv[l].size, offset = (int32_t)lv[l].offset;
        if (lv[l].dense) {
            ENCODE_LEVEL(DENSE_INDEX)
        } else {
            ENCODE_LEVEL(HASH_INDEX)
        }
    }
}

/* out [n_out][TILE] = W in + b for activations in [n_in][TILE], W [n_out][n_in] as torch stores it: points run
   along the last axis in blocks of one vector (GCC vector extensions: the widest the machine has), each weight
   broadcast against a block, the sums kept in registers, nothing reduced across lanes. m rounds up to whole
   blocks (the extra lanes compute values that are never read). */
#define BLOCK 16
typedef float vf __attribute__((vector_size(4 * BLOCK)));
typedef int32_t vi __attribute__((vector_size(4 * BLOCK)));

static inline void dense(const float* restrict w, const float* restrict bias, const float (*restrict in)[TILE],
                         float (*restrict out)[TILE], const int m, const int n_in, const int n_out, const int relu) {
    for (int s0 = 0; s0 < m; s0 += BLOCK) {
        for (int j = 0; j < n_out; ++j) {
            vf acc = (vf){0} + bias[j];
            for (int i = 0; i < n_in; ++i) acc += w[j * n_in + i] * *(const vf*)&in[i][s0];
            if (relu) acc = (vf)((vi)acc & (acc > 0.0f));
            *(vf*)&out[j][s0] = acc;
        }
    }
}

/* Per ray: the module path's march (steps t0 + (k + 0.5) dt inside occupied cells), each step's density and colour
   from hash grid -> MLP (packed as [W, b] per layer), composited front to back until the optical depth before a
   step reaches `cut`; the sky shows through the rest. Writes rgb [n, 3] and the field evaluations of each ray. */
void render_rays(const float* o, const float* d, const float* t0, const float* t1, int64_t n, float dt, int64_t K,
                 const float* lo, const float* size, const uint8_t* occ, const int64_t* shape,
                 const float* table, const Level* lv, const float* mlp, float cut, const float* sky,
                 float* rgb, int32_t* evals, int threads) {
    const int64_t tiles = (n + TILE - 1) / TILE;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t tile = 0; tile < tiles; ++tile) {
        const int64_t r0 = tile * TILE;
        const int nr = (int)(n - r0 < TILE ? n - r0 : TILE);
        float acc[TILE][3], depth[TILE], trans[TILE], x[3][TILE] = {{0}};
        float feat[NL * NF][TILE] __attribute__((aligned(64))) = {{0}};
        float h0[MAXW][TILE] __attribute__((aligned(64))), h1[MAXW][TILE] __attribute__((aligned(64)));
        int64_t next[TILE];
        int32_t count[TILE], who[TILE];
        for (int r = 0; r < nr; ++r) {
            acc[r][0] = acc[r][1] = acc[r][2] = 0.0f; depth[r] = 0.0f; trans[r] = 1.0f; next[r] = 0; count[r] = 0;
        }
        for (;;) {
            int m = 0;
            for (int r = 0; r < nr; ++r) {  /* each live ray to its next occupied step */
                const int64_t b = r0 + r;
                for (int64_t k = next[r]; k < K; ++k) {
                    float t = t0[b] + ((float)k + 0.5f) * dt;
                    if (t >= t1[b]) break;
                    float p[3];
                    int64_t cell = 0;
                    for (int j = 0; j < 3; ++j) {
                        p[j] = (o[3 * b + j] + t * d[3 * b + j] - lo[j]) / size[j];
                        int64_t i = (int64_t)(p[j] * (float)shape[j]);
                        i = i < 0 ? 0 : (i >= shape[j] ? shape[j] - 1 : i);
                        cell = cell * shape[j] + i;
                    }
                    if (!occ[cell]) continue;
                    for (int j = 0; j < 3; ++j) x[j][m] = p[j] < 0.0f ? 0.0f : (p[j] > 1.0f - 1e-6f ? 1.0f - 1e-6f : p[j]);
                    who[m++] = r;
                    next[r] = k + 1;
                    break;
                }
                if (m == 0 || who[m - 1] != r) next[r] = K;  /* no occupied step left: the ray is done */
            }
            if (m == 0) break;
            encode_batch((const float (*)[TILE])x, m, table, lv, feat);
            const float* w = mlp;
            float (*in)[TILE] = feat, (*out)[TILE] = h0;
            #pragma GCC unroll 8
            for (int l = 0; l < NLAYERS; ++l) {
                dense(w, w + DIMS[l] * DIMS[l + 1], (const float (*)[TILE])in, out, m, DIMS[l], DIMS[l + 1], l + 1 < NLAYERS);
                w += DIMS[l] * DIMS[l + 1] + DIMS[l + 1];
                in = out; out = out == h0 ? h1 : h0;
            }
            /* in [0..3][s]: raw (sigma, r, g, b) -> optical depth, transmission and colour of each sample, in place
               (a loop over points, so the exponentials vectorise) */
            #pragma omp simd
            for (int s = 0; s < m; ++s) {
                in[0][s] = expf(in[0][s]) * dt;
                for (int c = 1; c < 4; ++c) in[c][s] = 1.0f / (1.0f + expf(-in[c][s]));
            }
            for (int s = 0; s < m; ++s) {  /* (1)-(3) of renderer.models.radiance, ray by ray */
                const int r = who[s];
                float tau = in[0][s], keep = expf(-tau), weight = trans[r] * (1.0f - keep);
                for (int c = 0; c < 3; ++c) acc[r][c] += weight * in[1 + c][s];
                depth[r] += tau;
                trans[r] *= keep;
                ++count[r];
                if (depth[r] >= cut) next[r] = K;
            }
        }
        for (int r = 0; r < nr; ++r) {
            for (int c = 0; c < 3; ++c) rgb[3 * (r0 + r) + c] = acc[r][c] + trans[r] * sky[c];
            evals[r0 + r] = count[r];
        }
    }
}
"""

_STATE: dict = {}


class _Level(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("res", ctypes.c_int64), ("size", ctypes.c_int64),
                ("offset", ctypes.c_int64), ("dense", ctypes.c_int64)]


def _compile(name: str, source: str, flags: list[str], libs: tuple[str, ...] = ()) -> ctypes.CDLL:
    """Compile `source` into the torch extensions cache, named by its hash (a second process reuses it)."""
    from torch.utils.cpp_extension import get_default_build_root

    digest = hashlib.sha256((source + " ".join([*flags, *_LINK, *libs]) + _cpu_id(flags)).encode()).hexdigest()[:16]
    folder = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / "redcube_cpu_kernels"
    lib = folder / f"{name}_{digest}.so"
    if not lib.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / f"{name}.c"
            src.write_text(source)
            obj, out = Path(tmp) / f"{name}.o", Path(tmp) / lib.name
            # compiled and linked apart: -ffast-math at link time adds crtfastmath.o, which turns on flush-to-zero
            # for the whole process (torch, numpy and hypothesis then lose denormal floats)
            for args in ([*flags, "-c", str(src), "-o", str(obj)], [*_LINK, str(obj), "-o", str(out), *libs]):
                done = subprocess.run([os.environ.get("CC", "gcc"), *args], capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"the compiler failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            os.replace(out, lib)  # atomic: a concurrent build leaves one whole file
    return ctypes.CDLL(str(lib))


def _cpu_id(flags: list[str]) -> str:
    """The processor a -march=native build is tied to (a cache shared between machines must not mix them)."""
    if "-march=native" not in flags:
        return ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return os.uname().machine
    return "".join(next((x for x in lines if x.startswith(key)), "") for key in ("model name", "flags"))


def _build() -> ctypes.CDLL:
    so = _compile("hashgrid", _SOURCE, _FLAGS)
    for name in ("encode_forward", "encode_backward"):
        fn = getattr(so, name)
        fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ctypes.c_int]
        fn.restype = None
    so.march.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_float] + [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 2 + [ctypes.c_int]
    so.march.restype = None
    return so


def _build_render(shape: tuple) -> ctypes.CDLL:
    """The fused renderer for one field shape (levels, features, smooth, layer widths)."""
    levels, features, smooth, dims = shape
    header = (f"#define NL {levels}\n#define NF {features}\n#define SMOOTH {int(smooth)}\n#define NLAYERS {len(dims) - 1}\n"
              f"#define MAXW {max(dims)}\nstatic const int DIMS[{len(dims)}] = {{{', '.join(map(str, dims))}}};\n")
    try:  # vector exponentials from glibc's libmvec where it links; else plain scalar maths
        so = _compile("render", header + _RENDER_SOURCE, _RENDER_FLAGS, ("-lmvec", "-lm"))
    except (RuntimeError, OSError):
        so = _compile("render", header + _RENDER_SOURCE, _RENDER_FLAGS_PLAIN, ("-lm",))
    p, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
    so.render_rays.argtypes = [p] * 4 + [i64, f32, i64] + [p] * 7 + [f32] + [p] * 3 + [ctypes.c_int]
    so.render_rays.restype = None
    return so


_LINK = ["-shared", "-fopenmp"]
_FLAGS = ["-O3", "-fopenmp", "-shared", "-fPIC", "-std=c99"]
_RENDER_FLAGS = ["-O3", "-ffast-math", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=gnu99"]
_RENDER_FLAGS_PLAIN = ["-O3", "-fopenmp", "-shared", "-fPIC", "-std=gnu99"]


def kernels():
    """The built library (encode_forward, encode_backward, march), or None where it cannot be built.
    REDCUBE_HASHGRID_CPP=0 turns it off."""
    if "lib" not in _STATE:
        _STATE["lib"] = None
        if os.environ.get("REDCUBE_HASHGRID_CPP", "1") == "0":
            _STATE["why"] = "turned off by REDCUBE_HASHGRID_CPP=0"
        else:
            try:
                _STATE["lib"] = _build()
            except Exception as e:  # no compiler, an unwritable cache, a failed build: the torch path still works
                _STATE["why"] = f"{type(e).__name__}: {e}"
                log.warning("hash grid: the C++ CPU kernels did not build (%s); using the pure-PyTorch path", _STATE["why"])
    return _STATE["lib"]


def render_kernel(shape: tuple):
    """The fused inference library (render_rays) for a field shape (levels, features, smooth, layer widths), built on
    first use (about a second), or None where it cannot be built (said once in the log). It shares the training
    kernels' code, so REDCUBE_HASHGRID_CPP=0 turns it off as well."""
    libs = _STATE.setdefault("render", {})
    if shape not in libs:
        libs[shape] = None
        if kernels() is not None and max(shape[3]) <= 512:
            try:
                libs[shape] = _build_render(shape)
            except Exception as e:
                _STATE["render_why"] = f"{type(e).__name__}: {e}"
                log.warning("radiance field: the fused C renderer did not build (%s); rendering through the module path",
                            _STATE["render_why"])
    return libs[shape]


def level_table(levels) -> ctypes.Array:
    """The levels' geometry as the C struct array the kernels read."""
    return (_Level * len(levels))(*[_Level(lv.scale, lv.resolution, lv.size, lv.offset, int(lv.dense)) for lv in levels])


def encode_forward(x: torch.Tensor, table: torch.Tensor, levels: ctypes.Array, f: int, smooth: bool) -> torch.Tensor:
    """Features [N, L * F] of contiguous float32 CPU points x [N, 3] from the flat table."""
    x, table = x.contiguous(), table.detach().contiguous()
    out = torch.empty(len(x), len(levels) * f)
    kernels().encode_forward(x.data_ptr(), table.data_ptr(), out.data_ptr(), len(x), levels, len(levels), f, int(smooth),
                             _threads())
    return out


def encode_backward(x: torch.Tensor, grad_out: torch.Tensor, grad_table: torch.Tensor, levels: ctypes.Array, f: int, smooth: bool) -> None:
    """grad_table (flat, float32) += the gradient of the features at x for output gradient grad_out [N, L * F]."""
    x, grad_out = x.contiguous(), grad_out.float().contiguous()
    kernels().encode_backward(x.data_ptr(), grad_out.data_ptr(), grad_table.data_ptr(), len(x), levels, len(levels), f,
                              int(smooth), _threads())


def unavailable_reason() -> str | None:
    """Why `kernels()` returned None (after it was called), else None."""
    return _STATE.get("why")


def render_rays(o: torch.Tensor, d: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor, dt: float, k: int, lo: torch.Tensor,
                size: torch.Tensor, occupied: torch.Tensor, shape: tuple[int, int, int], table: torch.Tensor, levels: ctypes.Array,
                f: int, smooth: bool, layers: list[torch.nn.Linear], cut: float, sky: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Colours [B, 3] of rays o, d [B, 3] (float32, CPU) through the field hash grid (table) -> MLP (`layers`, ReLU
    between them; output raw density and colour), and the field evaluations of each ray [B] (int32). Call only where
    `render_kernel` of the same shape is not None."""
    c = lambda v: v.detach().float().contiguous()  # noqa: E731
    o, d, t0, t1, lo, size, table, sky = map(c, (o, d, t0, t1, lo, size, table, sky))
    lib = render_kernel(field_shape(len(levels), f, smooth, layers))
    mlp = torch.cat([t for m in layers for t in (m.weight.detach().reshape(-1), m.bias.detach())]).float().contiguous()
    occ = occupied.to(torch.uint8).contiguous()
    shp = torch.tensor(shape, dtype=torch.int64)
    rgb, evals = torch.empty(len(o), 3), torch.empty(len(o), dtype=torch.int32)
    lib.render_rays(o.data_ptr(), d.data_ptr(), t0.data_ptr(), t1.data_ptr(), len(o), dt, k, lo.data_ptr(), size.data_ptr(),
                    occ.data_ptr(), shp.data_ptr(), table.data_ptr(), levels, mlp.data_ptr(), cut, sky.data_ptr(),
                    rgb.data_ptr(), evals.data_ptr(), _threads())
    return rgb, evals


def field_shape(levels: int, features: int, smooth: bool, layers: list[torch.nn.Linear]) -> tuple:
    """The key `render_kernel` builds one library per."""
    return levels, features, bool(smooth), (layers[0].in_features, *(m.out_features for m in layers))


def march(o: torch.Tensor, d: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor, u: torch.Tensor, dt: float,
          lo: torch.Tensor, size: torch.Tensor, occupied: torch.Tensor, shape: tuple[int, int, int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Occupied march steps of rays o, d [B, 3] (float32, CPU): t [B, k] (row b valid in [0, counts[b])) and counts [B]."""
    c = lambda v: v.float().contiguous()  # noqa: E731
    o, d, t0, t1, u, lo, size = map(c, (o, d, t0, t1, u, lo, size))
    occ = occupied.to(torch.uint8).contiguous()
    shp = torch.tensor(shape, dtype=torch.int64)
    out, counts = torch.empty(len(o), k), torch.empty(len(o), dtype=torch.int64)
    kernels().march(o.data_ptr(), d.data_ptr(), t0.data_ptr(), t1.data_ptr(), u.data_ptr(), dt, lo.data_ptr(), size.data_ptr(),
                    occ.data_ptr(), shp.data_ptr(), len(o), k, out.data_ptr(), counts.data_ptr(), _threads())
    return out, counts


def _threads() -> int:
    return int(os.environ.get("REDCUBE_KERNEL_THREADS", torch.get_num_threads()))
