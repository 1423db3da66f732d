"""One tuning trial: fine-tune the pre-trained network with the weighted loss, score it by NIQE.

    python -m jobs.examples.sr.finetune --checkpoint PATH --lr 1e-4 --w2 0.1 --w3 0.001 --w4 1 \
        [--w1 1] [--steps 150] [--result FILE]

loss = w1*MSE + w2*perceptual + w3*adversarial + w4*style (see ``losses.py`` for the terms and
the stand-in for VGG). Writes {"niqe": ..., "psnr": ..., "ssim": ..., ...} for the held-out
images (objective: niqe, lower is better) to ``--result``, else to ORCH_RESULT_FILE, else
``result.json`` in the working directory.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from jobs.examples.sr.data import HELD_OUT_IMAGES, TRAIN_IMAGES, PatchSampler, load_pairs
from jobs.examples.sr.losses import Discriminator, GeneratorLoss, LossWeights, discriminator_loss
from jobs.examples.sr.model import TinyDBPN
from jobs.examples.sr.runtime import (
    add_training_args,
    configure_threads,
    evaluate,
    load_checkpoint,
    seed_everything,
)
from jobs.result import write_result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.examples.sr.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="from the pre-training")
    parser.add_argument("--lr", type=float, required=True, help="Adam learning rate (G and D)")
    parser.add_argument("--w1", type=float, default=1.0, help="MSE weight (default 1)")
    parser.add_argument("--w2", type=float, default=0.0, help="perceptual weight")
    parser.add_argument("--w3", type=float, default=0.0, help="adversarial weight")
    parser.add_argument("--w4", type=float, default=0.0, help="style weight")
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps (default 150)")
    add_training_args(parser)
    args = parser.parse_args(argv)
    numbers = {"lr": args.lr, "w1": args.w1, "w2": args.w2, "w3": args.w3, "w4": args.w4}
    bad = [name for name, value in numbers.items() if not math.isfinite(value) or value < 0]
    if bad or args.lr == 0:
        parser.error(f"--lr must be > 0 and the weights >= 0 (bad: {', '.join(bad) or 'lr'})")
    if args.steps < 1 or args.batch_size < 1 or args.patch_size < 4:
        parser.error("--steps and --batch-size must be >= 1 and --patch-size >= 4")
    return args


def fine_tune(model: TinyDBPN, sampler: PatchSampler, weights: LossWeights, steps: int,
              lr: float) -> dict[str, float]:
    """Train generator (and, with an adversarial weight, discriminator) for ``steps`` steps;
    returns the mean of each loss term over the last 10% of steps."""
    criterion = GeneratorLoss(weights)
    g_optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    discriminator = Discriminator() if weights.adversarial else None
    d_optimiser = torch.optim.Adam(discriminator.parameters(), lr=lr) if discriminator else None
    tail: dict[str, list[float]] = {}
    model.train()
    for step in range(steps):
        lr_batch, hr_batch = (torch.from_numpy(a) for a in sampler.batch())
        sr = model(lr_batch)
        if discriminator is not None:
            d_loss = discriminator_loss(discriminator(hr_batch), discriminator(sr.detach()))
            d_optimiser.zero_grad()
            d_loss.backward()
            d_optimiser.step()
        loss, terms = criterion(sr, hr_batch, discriminator)
        g_optimiser.zero_grad()
        loss.backward()
        g_optimiser.step()
        if step >= steps - max(1, steps // 10):
            for name, value in {"loss": loss.item(), **terms}.items():
                tail.setdefault(name, []).append(value)
    return {name: float(np.mean(values)) for name, values in tail.items()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    threads = configure_threads()
    seed_everything(args.seed)
    model, stored = load_checkpoint(args.checkpoint)
    weights = LossWeights(args.w1, args.w2, args.w3, args.w4)
    sampler = PatchSampler(load_pairs(TRAIN_IMAGES), args.patch_size, args.batch_size, args.seed)
    losses = fine_tune(model, sampler, weights, args.steps, args.lr)
    scores = evaluate(model, load_pairs(HELD_OUT_IMAGES, args.eval_crop))
    write_result({
        **scores, "losses": losses, "steps": args.steps, "pretrain_steps": stored.get("pretrain_steps"),
        "threads": threads, "seconds": time.monotonic() - started,
    }, args.result)


if __name__ == "__main__":
    main()
