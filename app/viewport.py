"""Composing the displayed picture: ground truth, network, split, error heat map, upscaling; and contact sheets
(the eval command's ground truth | network | error grid).

Pure numpy (plus torch for bilinear resize); no GUI calls, so video export and tests share it.
Images are float32 [H, W, 3] in [0, 1].
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from training import metrics

SPLIT_LINE = np.array([1.0, 1.0, 1.0], dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _nearest_index(src: int, dst: int) -> np.ndarray:
    return (np.arange(dst) * src) // dst


def upscale(img: np.ndarray, size: int, method: str = "nearest") -> np.ndarray:
    """Resize a square image [h, h, C] to [size, size, C] (nearest keeps the network's pixels visible)."""
    if img.shape[0] == size:
        return img
    if method == "nearest":
        idx = _nearest_index(img.shape[0], size)
        return np.take(np.take(img, idx, axis=0), idx, axis=1)  # C-contiguous, as textures need
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=img.shape[0] > size)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).numpy())


def contact_sheet(rows: list[list[np.ndarray]], tile: int = 128, gap: int = 4) -> np.ndarray:
    """Grid of square images (each row a list of [R, R, 3] floats), upscaled to `tile`, on a white background."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    sheet = np.ones((n_rows * (tile + gap) + gap, n_cols * (tile + gap) + gap, 3), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = gap + i * (tile + gap), gap + j * (tile + gap)
            sheet[y:y + tile, x:x + tile] = upscale(np.asarray(img, dtype=np.float32), tile)
    return sheet


@functools.lru_cache(maxsize=1)
def _heat_lut() -> np.ndarray:
    """[256, 3] 'inferno' colour map (perceptually uniform, dark = no error)."""
    from matplotlib import colormaps

    return colormaps["inferno"](np.linspace(0, 1, 256))[:, :3].astype(np.float32)


def error_map(pred: np.ndarray, target: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """Heat map [H, W, 3] of the mean absolute error per pixel; error 1/gain and above is the top colour."""
    err = np.abs(pred - target).mean(axis=-1) * gain
    idx = np.clip(err * 255 + 0.5, 0, 255).astype(np.int32)
    return _heat_lut()[idx]


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of images [H, W, 3] in [0, 1], by the trainer's own metric."""
    return metrics.psnr(torch.from_numpy(np.asarray(pred)), torch.from_numpy(np.asarray(target)))


def split_image(gt: np.ndarray, net: np.ndarray, split: float) -> np.ndarray:
    """Ground truth left of the split position, network right of it, with a thin divider line."""
    size = gt.shape[1]
    col = int(round(split * size))
    out = np.array(net, copy=True)
    out[:, :col] = gt[:, :col]
    out[:, max(0, col - 1):min(size, col + 1)] = SPLIT_LINE
    return out


def compose(mode: str, gt: np.ndarray, net: np.ndarray | None, err: np.ndarray | None, split: float = 0.5) -> np.ndarray:
    """The viewport picture for a mode: [S, 2S, 3] side by side, else [S, S, 3]. Missing network -> grey."""
    if net is None:
        net = np.full_like(gt, 0.2)
    if err is None:
        err = np.zeros_like(gt)
    if mode == "side_by_side":
        return np.concatenate([gt, net], axis=1)
    if mode == "split":
        return split_image(gt, net, split)
    return {"gt": gt, "network": net, "error": err}[mode]
