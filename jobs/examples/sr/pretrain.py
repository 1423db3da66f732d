"""Pre-training, run once before the search: MSE only (the paper's w2 = w3 = w4 = 0 stage).

    python -m jobs.examples.sr.pretrain --out-dir DIR [--steps 1500] [--result FILE]

Saves ``DIR/pretrained.pt`` and writes the result {"checkpoint": <absolute path>, "loss": ...,
"niqe"/"psnr"/"ssim": held-out scores of the pre-trained model} to ``--result``, else to the file
named by ORCH_RESULT_FILE, else ``result.json`` in the working directory.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from jobs.examples.sr.data import HELD_OUT_IMAGES, TRAIN_IMAGES, PatchSampler, load_pairs
from jobs.examples.sr.model import TinyDBPN, parameter_count
from jobs.examples.sr.runtime import (
    add_training_args,
    configure_threads,
    evaluate,
    save_checkpoint,
    seed_everything,
)
from jobs.result import write_result

CHECKPOINT_NAME = "pretrained.pt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.examples.sr.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="where the checkpoint goes")
    parser.add_argument("--steps", type=int, default=1500, help="optimiser steps (default 1500)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    add_training_args(parser)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.patch_size < 4:
        parser.error("--steps and --batch-size must be >= 1 and --patch-size >= 4")
    return args


def train(model: TinyDBPN, sampler: PatchSampler, steps: int, lr: float) -> float:
    """Adam on MSE with a cosine-decayed rate; returns the mean loss of the last 10% of steps."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    tail = []
    model.train()
    for step in range(steps):
        lr_batch, hr_batch = (torch.from_numpy(a) for a in sampler.batch())
        loss = F.mse_loss(model(lr_batch), hr_batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.item())
    return float(np.mean(tail))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    threads = configure_threads()
    seed_everything(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = (args.out_dir / CHECKPOINT_NAME).resolve()

    model = TinyDBPN()
    sampler = PatchSampler(load_pairs(TRAIN_IMAGES), args.patch_size, args.batch_size, args.seed)
    loss = train(model, sampler, args.steps, args.lr)
    save_checkpoint(checkpoint, model, {"pretrain_steps": args.steps, "seed": args.seed})
    scores = evaluate(model, load_pairs(HELD_OUT_IMAGES, args.eval_crop))
    write_result({
        "checkpoint": str(checkpoint), "loss": loss, **scores, "parameters": parameter_count(model),
        "steps": args.steps, "threads": threads, "seconds": time.monotonic() - started,
    }, args.result)


if __name__ == "__main__":
    main()
