"""Contact sheets of square images (the eval command's ground truth | network | error grid)."""

from __future__ import annotations

import numpy as np

from app.viewport import upscale


def contact_sheet(rows: list[list[np.ndarray]], tile: int = 128, gap: int = 4) -> np.ndarray:
    """Grid of square images (each row a list of [R, R, 3] floats), upscaled to `tile`, on a white background."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    sheet = np.ones((n_rows * (tile + gap) + gap, n_cols * (tile + gap) + gap, 3), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = gap + i * (tile + gap), gap + j * (tile + gap)
            sheet[y:y + tile, x:x + tile] = upscale(np.asarray(img, dtype=np.float32), tile)
    return sheet
