"""The fine-tuning loss: w1*MSE + w2*perceptual + w3*adversarial + w4*style.

Substitution: the paper's perceptual and style terms use a pretrained VGG, whose weights cannot be
downloaded here. ``FeatureNet`` stands in for it: a small convolutional net with fixed random
weights from a fixed seed (the same net in every trial, never trained). Random convolutional
features still respond to edges and texture at several scales, which is what these terms compare;
the perceptual term compares the feature maps, the style term their Gram matrices (Gatys et al.).
The adversarial term is the usual non-saturating GAN loss against ``Discriminator``, a tiny
convolutional critic trained alongside the generator from scratch in each trial.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_NET_SEED = 20180618   # fixed: the "pretrained" loss network must not vary between trials


@dataclass(frozen=True)
class LossWeights:
    mse: float = 1.0
    perceptual: float = 0.0
    adversarial: float = 0.0
    style: float = 0.0


class FeatureNet(nn.Module):
    """Fixed random features at full, 1/2 and 1/4 resolution (a stand-in for VGG)."""

    def __init__(self, seed: int = FEATURE_NET_SEED) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Conv2d(1, 16, 3, padding=1),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
        ])
        generator = torch.Generator().manual_seed(seed)
        for conv in self.blocks:
            # He initialisation keeps the activations' scale similar from layer to layer.
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu", generator=generator)
            nn.init.zeros_(conv.bias)
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        features, x = [], image
        for conv in self.blocks:
            x = F.relu(conv(x))
            features.append(x)
        return features


def gram(features: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel correlation of a (batch, channels, h, w) feature map."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (channels * height * width)


def perceptual_loss(sr_features: list[torch.Tensor], hr_features: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.mse_loss(s, h) for s, h in zip(sr_features, hr_features))


def style_loss(sr_features: list[torch.Tensor], hr_features: list[torch.Tensor]) -> torch.Tensor:
    return sum(F.mse_loss(gram(s), gram(h)) for s, h in zip(sr_features, hr_features))


class Discriminator(nn.Module):
    """A small patch critic: one logit per 8x8 region of an HR patch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 1, 3, padding=1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


class GeneratorLoss(nn.Module):
    """The weighted sum; terms with weight 0 are not computed (they cost time and change nothing)."""

    def __init__(self, weights: LossWeights) -> None:
        super().__init__()
        self.weights = weights
        self.features = FeatureNet()

    def forward(self, sr: torch.Tensor, hr: torch.Tensor,
                discriminator: Discriminator | None) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.weights
        terms: dict[str, torch.Tensor] = {"mse": F.mse_loss(sr, hr)}
        if w.perceptual or w.style:
            sr_features, hr_features = self.features(sr), self.features(hr)
            if w.perceptual:
                terms["perceptual"] = perceptual_loss(sr_features, hr_features)
            if w.style:
                terms["style"] = style_loss(sr_features, hr_features)
        if w.adversarial:
            if discriminator is None:
                raise ValueError("an adversarial weight needs a discriminator")
            terms["adversarial"] = generator_adversarial_loss(discriminator(sr))
        total = sum(getattr(w, name) * value for name, value in terms.items())
        return total, {name: value.item() for name, value in terms.items()}
