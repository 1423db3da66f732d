"""What both programs share: thread count, seeding, held-out evaluation, checkpoints."""
from __future__ import annotations

import argparse
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jobs.examples.sr.data import SCALE, Pair
from jobs.examples.sr.model import TinyDBPN
from jobs.examples.sr.niqe import niqe
from jobs.result import Env

CPUS_ENV = Env.CPUS


def configure_threads() -> int:
    """Use as many torch threads as the job was given CPUs (env ORCH_CPUS, default 1)."""
    raw = os.environ.get(CPUS_ENV, "1")
    try:
        cpus = int(raw)
    except ValueError:
        raise SystemExit(f"{CPUS_ENV} must be a whole number of CPUs, got {raw!r}") from None
    if cpus < 1:
        raise SystemExit(f"{CPUS_ENV} must be at least 1, got {cpus}")
    torch.set_num_threads(cpus)
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Same seed and thread count -> same result: seed every generator, forbid nondeterminism."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def super_resolve(model: TinyDBPN, lr: np.ndarray) -> np.ndarray:
    """The model's x4 output for one LR luminance image, clipped to [0, 1]."""
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(lr.astype(np.float32))[None, None])
    return np.clip(out[0, 0].double().numpy(), 0.0, 1.0)


def evaluate(model: TinyDBPN, pairs: list[Pair]) -> dict[str, Any]:
    """Mean NIQE, PSNR (dB) and SSIM of the model's outputs on held-out pairs, as PIRM scores
    them: 8-bit luminance with a border of ``SCALE`` pixels shaved off; plus NIQE per image."""
    per_image: dict[str, float] = {}
    psnrs, ssims = [], []
    for pair in pairs:
        sr = np.round(super_resolve(model, pair.lr) * 255.0)
        hr = np.round(pair.hr * 255.0)
        sr_c, hr_c = sr[SCALE:-SCALE, SCALE:-SCALE], hr[SCALE:-SCALE, SCALE:-SCALE]
        per_image[pair.name] = niqe(sr_c)
        psnrs.append(peak_signal_noise_ratio(hr_c, sr_c, data_range=255.0))
        ssims.append(structural_similarity(hr_c, sr_c, data_range=255.0))
    return {
        "niqe": float(np.mean(list(per_image.values()))),
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "niqe_per_image": per_image,
    }


def save_checkpoint(path: Path, model: TinyDBPN, extra: dict[str, Any]) -> None:
    torch.save({"config": model.config, "state": model.state_dict(), **extra}, path)


def load_checkpoint(path: Path) -> tuple[TinyDBPN, dict[str, Any]]:
    """The model stored by ``save_checkpoint`` and the checkpoint's other entries."""
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SystemExit(f"checkpoint {path} does not exist") from None
    except Exception as exc:   # torch raises many types for a damaged or foreign file
        raise SystemExit(f"checkpoint {path} cannot be loaded: {exc}") from None
    try:
        model = TinyDBPN(**stored.pop("config"))
        model.load_state_dict(stored.pop("state"))
    except (KeyError, TypeError, RuntimeError) as exc:
        raise SystemExit(f"checkpoint {path} is not one of jobs.examples.sr.pretrain: {exc}") from None
    return model, stored


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """The options pre-training and fine-tuning share: batches, patches, scoring, seed, result."""
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch-size", type=int, default=16, help="LR patch side; HR is 4x")
    parser.add_argument("--eval-crop", type=int, default=0,
                        help="score held-out images centre-cropped to this HR size (0: whole; "
                             "NIQE needs >= 200: two 96-pixel blocks after a 4-pixel shave)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--result", type=Path, default=None, help="result file (overrides env)")
