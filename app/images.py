"""Image helpers for what a person looks at: error heat maps, upscaling, contact sheets."""

from __future__ import annotations

import numpy as np


def error_heatmap(pred: np.ndarray, gt: np.ndarray, scale: float = 4.0) -> np.ndarray:
    """Mean absolute error per pixel as a black -> red -> yellow -> white ramp; `scale` maps error 1/scale to white."""
    e = np.clip(np.abs(np.asarray(pred) - np.asarray(gt)).mean(-1) * scale, 0, 1)[..., None]
    return np.clip(np.concatenate([3 * e, 3 * e - 1, 3 * e - 2], axis=-1), 0, 1).astype(np.float32)


def upscale_nearest(img: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a square image [R, R, C] to [size, size, C]."""
    idx = (np.arange(size) * img.shape[0] // size).clip(0, img.shape[0] - 1)
    return img[idx][:, idx]


def contact_sheet(rows: list[list[np.ndarray]], tile: int = 128, gap: int = 4) -> np.ndarray:
    """Grid of square images (each row a list of [R, R, 3] floats), upscaled to `tile`, on a white background."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    sheet = np.ones((n_rows * (tile + gap) + gap, n_cols * (tile + gap) + gap, 3), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = gap + i * (tile + gap), gap + j * (tile + gap)
            sheet[y:y + tile, x:x + tile] = upscale_nearest(np.asarray(img, dtype=np.float32), tile)
    return sheet
