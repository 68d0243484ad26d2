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

_SOURCE = r"""
#include <math.h>
#include <stdint.h>

typedef struct { float scale; int64_t res, size, offset, dense; } Level;

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

_STATE: dict = {}


class _Level(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("res", ctypes.c_int64), ("size", ctypes.c_int64),
                ("offset", ctypes.c_int64), ("dense", ctypes.c_int64)]


def _build() -> ctypes.CDLL:
    """Compile the source into the torch extensions cache, named by its hash (a second process reuses it)."""
    from torch.utils.cpp_extension import get_default_build_root

    digest = hashlib.sha256((_SOURCE + " ".join(_FLAGS)).encode()).hexdigest()[:16]
    folder = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / "redcube_cpu_kernels"
    lib = folder / f"hashgrid_{digest}.so"
    if not lib.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / "hashgrid.c"
            src.write_text(_SOURCE)
            out = Path(tmp) / lib.name
            done = subprocess.run([os.environ.get("CC", "gcc"), *_FLAGS, str(src), "-o", str(out)], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"the compiler failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            os.replace(out, lib)  # atomic: a concurrent build leaves one whole file
    so = ctypes.CDLL(str(lib))
    for name in ("encode_forward", "encode_backward"):
        fn = getattr(so, name)
        fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ctypes.c_int]
        fn.restype = None
    so.march.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_float] + [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 2 + [ctypes.c_int]
    so.march.restype = None
    return so


_FLAGS = ["-O3", "-fopenmp", "-shared", "-fPIC", "-std=c99"]


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
