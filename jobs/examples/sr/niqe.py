"""NIQE, the "completely blind" image quality score (lower is better), in numpy/scipy.

Mittal, Soundararajan and Bovik, "Making a 'Completely Blind' Image Quality Analyzer",
IEEE Signal Processing Letters 20(3), 2013. This follows the reference re-implementation in
BasicSR 1.4.2 (``basicsr/metrics/niqe.py``, Apache-2.0), which reproduces the authors' MATLAB
release to 1e-7 (5.7296 on Set14 ``baboon.png``). The pristine-image model
(``niqe_pris_params.npz``: the 36-d mean, covariance and 7x7 Gaussian window of the MATLAB
``modelparameters.mat``) is copied unchanged from that package; ``NIQE-PARAMS.md`` gives its
provenance, citations and licences.

Scores are computed on the luminance (Y of BT.601 YCbCr, range [16, 235]) rounded to integers, in
96x96 blocks without overlap, at two scales; the half scale uses MATLAB's antialiased bicubic
``imresize``, reimplemented below because scikit-image's resize differs from it.

This computes in float64 where the reference uses float32. Results agree to 1e-5 on most
images, but on images with large flat areas (scikit-image's astronaut) they differ by up to 0.04:
the fit splits coefficients at exactly zero, and flat areas give exact zeros in one precision
and tiny residues in the other.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma

PARAMS_FILE = Path(__file__).with_name("niqe_pris_params.npz")
BLOCK = 96


@functools.lru_cache(maxsize=1)
def pristine_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (36,), covariance (36, 36), Gaussian window (7, 7)) of the pristine-image model."""
    with np.load(PARAMS_FILE) as params:
        return (params["mu_pris_param"].reshape(-1), params["cov_pris_param"],
                params["gaussian_window"])


@functools.lru_cache(maxsize=1)
def _aggd_table() -> tuple[np.ndarray, np.ndarray]:
    """The shape grid and its moment ratio, looked up by moment matching (as the reference)."""
    shapes = np.arange(0.2, 10.001, 0.001)
    ratio = np.square(gamma(2 / shapes)) / (gamma(1 / shapes) * gamma(3 / shapes))
    return shapes, ratio


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luminance in [16, 235] of an RGB image in [0, 255] (MATLAB ``rgb2ycbcr``)."""
    rgb = np.asarray(rgb, dtype=np.float64) / 255.0
    return rgb @ np.array([65.481, 128.553, 24.966]) + 16.0


def _cubic(x: np.ndarray) -> np.ndarray:
    absx = np.abs(x)
    return ((1.5 * absx**3 - 2.5 * absx**2 + 1) * (absx <= 1)
            + (-0.5 * absx**3 + 2.5 * absx**2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2)))


def _resize_matrix(in_len: int, scale: float) -> np.ndarray:
    """The (out, in) weights of MATLAB's bicubic imresize along one axis, with antialiasing."""
    out_len = math.ceil(in_len * scale)
    kernel_width = 4.0 / scale if scale < 1 else 4.0
    centres = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(centres - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = centres[:, None] - indices
    weights = scale * _cubic(distance * scale) if scale < 1 else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # MATLAB mirrors out-of-range indices at the border (symmetric padding).
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    source = mirror[(indices.astype(np.int64) - 1) % (2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), source.ravel()), weights.ravel())
    return matrix


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-compatible bicubic resize (with antialiasing when shrinking) of a 2-D image."""
    rows = _resize_matrix(image.shape[0], scale)
    cols = _resize_matrix(image.shape[1], scale)
    return rows @ image @ cols.T


def _aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Shape, left and right scale of an asymmetric generalised Gaussian fitted to ``values``."""
    values = values.ravel()
    shapes, ratio = _aggd_table()
    left_std = np.sqrt(np.mean(values[values < 0] ** 2))
    right_std = np.sqrt(np.mean(values[values > 0] ** 2))
    gamma_hat = left_std / right_std
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
    r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = shapes[np.argmin((ratio - r_hat_norm) ** 2)]
    factor = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return float(alpha), float(left_std * factor), float(right_std * factor)


def _block_features(block: np.ndarray) -> list[float]:
    """The 18 NIQE features of one block of normalised coefficients."""
    alpha, left, right = _aggd(block)
    features = [alpha, (left + right) / 2]
    # Products of neighbours along four orientations capture the regular structure that
    # distortions disturb (paper, Sec. II-B).
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, left, right = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (right - left) * gamma(2 / alpha) / gamma(1 / alpha)
        features.extend([alpha, mean, left, right])
    return features


def niqe_luminance(y: np.ndarray) -> float:
    """NIQE of a luminance image in [0, 255] (two 96x96 blocks or more); callers round it."""
    mu_pris, cov_pris, window = pristine_model()
    blocks_h, blocks_w = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    # The distorted image's feature covariance needs at least two blocks.
    if blocks_h * blocks_w < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks, got an image of {y.shape}")
    image = np.asarray(y, dtype=np.float64)[: blocks_h * BLOCK, : blocks_w * BLOCK]
    per_scale = []
    for scale in (1, 2):
        mu = convolve(image, window, mode="nearest")
        sigma = np.sqrt(np.abs(convolve(image**2, window, mode="nearest") - mu**2))
        normalised = (image - mu) / (sigma + 1)
        size = BLOCK // scale
        per_scale.append(np.array([
            _block_features(normalised[i * size:(i + 1) * size, j * size:(j + 1) * size])
            for j in range(blocks_w) for i in range(blocks_h)
        ]))
        if scale == 1:
            image = imresize(image / 255.0, 0.5) * 255.0
    features = np.concatenate(per_scale, axis=1)
    mu_dist = np.nanmean(features, axis=0)
    cov_dist = np.cov(features[~np.isnan(features).any(axis=1)], rowvar=False)
    diff = mu_pris - mu_dist
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov_dist) / 2) @ diff))


def niqe(image: np.ndarray, crop_border: int = 0) -> float:
    """NIQE of an 8-bit-range image, grey (H, W) or RGB (H, W, 3), values in [0, 255]."""
    image = np.asarray(image, dtype=np.float64)
    y = rgb_to_y(image) if image.ndim == 3 else image
    if crop_border:
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    # Rounding to integers, as the reference does, keeps results consistent with MATLAB.
    return niqe_luminance(np.round(y))
