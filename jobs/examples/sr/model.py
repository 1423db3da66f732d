"""A tiny D-DBPN-style x4 network (Haris, Shakhnarovich and Ukita, "Deep Back-Projection
Networks for Super-Resolution", CVPR 2018), about 150k parameters, one luminance channel.

As in DBPN, up- and down-projection units alternate and each unit corrects its own projection by
back-projecting the error; the dense variant's concatenation is kept only in the reconstruction.
The network predicts a residual over the bicubic upscale so that a short CPU training starts from
a sensible image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# x4 projection: kernel 8, stride 4, padding 2 (the DBPN paper's setting for this scale).
KERNEL, STRIDE, PADDING = 8, 4, 2


def _up(channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(channels, channels, KERNEL, STRIDE, PADDING)


def _down(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, KERNEL, STRIDE, PADDING)


class UpProjection(nn.Module):
    """LR features -> HR features, with the back-projected LR error added back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.up1, self.down, self.up2 = _up(channels), _down(channels), _up(channels)
        self.act1, self.act2, self.act3 = nn.PReLU(), nn.PReLU(), nn.PReLU()

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        high0 = self.act1(self.up1(low))
        low0 = self.act2(self.down(high0))
        return high0 + self.act3(self.up2(low0 - low))


class DownProjection(nn.Module):
    """HR features -> LR features, with the back-projected HR error added back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.down1, self.up, self.down2 = _down(channels), _up(channels), _down(channels)
        self.act1, self.act2, self.act3 = nn.PReLU(), nn.PReLU(), nn.PReLU()

    def forward(self, high: torch.Tensor) -> torch.Tensor:
        low0 = self.act1(self.down1(high))
        high0 = self.act2(self.up(low0))
        return low0 + self.act3(self.down2(high0 - high))


class TinyDBPN(nn.Module):
    """Feature extraction, ``stages`` up-projections with down-projections between them, and a
    reconstruction from all HR feature maps, added to the bicubic upscale."""

    def __init__(self, features: int = 32, channels: int = 16, stages: int = 2) -> None:
        super().__init__()
        self.config = {"features": features, "channels": channels, "stages": stages}
        self.extract = nn.Sequential(
            nn.Conv2d(1, features, 3, padding=1), nn.PReLU(),
            nn.Conv2d(features, channels, 1), nn.PReLU(),
        )
        self.ups = nn.ModuleList(UpProjection(channels) for _ in range(stages))
        self.downs = nn.ModuleList(DownProjection(channels) for _ in range(stages - 1))
        self.reconstruct = nn.Conv2d(channels * stages, 1, 3, padding=1)

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        features = self.extract(low)
        highs = [self.ups[0](features)]
        for down, up in zip(self.downs, self.ups[1:]):
            highs.append(up(down(highs[-1])))
        residual = self.reconstruct(torch.cat(highs, dim=1))
        bicubic = F.interpolate(low, scale_factor=STRIDE, mode="bicubic", align_corners=False)
        return bicubic + residual


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
