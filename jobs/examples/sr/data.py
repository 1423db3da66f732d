"""Offline image data for the x4 super-resolution example: scikit-image's sample images.

Every image is used as luminance only (BT.601 Y for colour images, the grey level otherwise), in
[0, 1]: NIQE scores luminance, and one channel keeps the network tiny. Low-resolution inputs are
made as DIV2K's are, with MATLAB's antialiased bicubic ``imresize`` at scale 1/4.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import skimage.data

from jobs.examples.sr.niqe import imresize, rgb_to_y

SCALE = 4
# Images that ship inside the scikit-image wheel (others need a download, impossible offline).
TRAIN_IMAGES = ("astronaut", "coffee", "rocket", "motorcycle", "brick", "grass", "gravel")
HELD_OUT_IMAGES = ("camera", "chelsea", "coins")


@dataclass(frozen=True)
class Pair:
    """A high-resolution luminance image and its x4 bicubic downscale, both in [0, 1]."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


def load_luminance(name: str) -> np.ndarray:
    """The named sample image as float64 luminance in [0, 1]."""
    if name == "motorcycle":
        image = skimage.data.stereo_motorcycle()[0]
    else:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            raise ValueError(f"unknown scikit-image sample image {name!r}")
        image = loader()
    image = np.asarray(image, dtype=np.float64)
    luminance = rgb_to_y(image[..., :3]) if image.ndim == 3 else image
    return luminance / 255.0


def make_pair(name: str, hr: np.ndarray) -> Pair:
    """Crop ``hr`` to a multiple of the scale and downscale it."""
    height, width = (hr.shape[0] // SCALE) * SCALE, (hr.shape[1] // SCALE) * SCALE
    hr = hr[:height, :width]
    return Pair(name, hr, np.clip(imresize(hr, 1 / SCALE), 0.0, 1.0))


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` window (the whole image on an axis shorter than that)."""
    top = max(0, (image.shape[0] - size) // 2)
    left = max(0, (image.shape[1] - size) // 2)
    return image[top:top + size, left:left + size]


def load_pairs(names: tuple[str, ...], crop: int = 0) -> list[Pair]:
    """HR/LR pairs of the named images, each centre-cropped to ``crop`` pixels when crop > 0."""
    pairs = []
    for name in names:
        hr = load_luminance(name)
        pairs.append(make_pair(name, centre_crop(hr, crop) if crop else hr))
    return pairs


class PatchSampler:
    """Random aligned LR/HR patch batches from a set of pairs, reproducible from its seed."""

    def __init__(self, pairs: list[Pair], lr_patch: int, batch_size: int, seed: int) -> None:
        too_small = [p.name for p in pairs if min(p.lr.shape) < lr_patch]
        if too_small:
            raise ValueError(f"images smaller than the {lr_patch}-pixel LR patch: {too_small}")
        self.pairs = pairs
        self.lr_patch = lr_patch
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """(LR, HR) arrays shaped (batch, 1, p, p) and (batch, 1, 4p, 4p), float32."""
        size, hr_size = self.lr_patch, self.lr_patch * SCALE
        lr = np.empty((self.batch_size, 1, size, size), dtype=np.float32)
        hr = np.empty((self.batch_size, 1, hr_size, hr_size), dtype=np.float32)
        for k in range(self.batch_size):
            pair = self.pairs[self.rng.integers(len(self.pairs))]
            top = self.rng.integers(pair.lr.shape[0] - size + 1)
            left = self.rng.integers(pair.lr.shape[1] - size + 1)
            lr_patch = pair.lr[top:top + size, left:left + size]
            hr_patch = pair.hr[top * SCALE:top * SCALE + hr_size, left * SCALE:left * SCALE + hr_size]
            # Random flips and transposes: eight times the variety from a handful of images.
            flips = self.rng.integers(2, size=3)
            lr[k, 0], hr[k, 0] = _augment(lr_patch, flips), _augment(hr_patch, flips)
        return lr, hr


def _augment(patch: np.ndarray, flips: np.ndarray) -> np.ndarray:
    if flips[0]:
        patch = patch[::-1]
    if flips[1]:
        patch = patch[:, ::-1]
    if flips[2]:
        patch = patch.T
    return patch
