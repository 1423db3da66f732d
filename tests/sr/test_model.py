"""The tiny DBPN: its size and its x4 geometry."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from jobs.examples.sr.model import TinyDBPN, parameter_count  # noqa: E402


def test_parameter_count_is_about_150k() -> None:
    assert 120_000 <= parameter_count(TinyDBPN()) <= 180_000


def test_output_is_four_times_the_input() -> None:
    out = TinyDBPN()(torch.zeros(2, 1, 12, 20))
    assert out.shape == (2, 1, 48, 80)


def test_without_a_residual_the_output_is_the_bicubic_upscale() -> None:
    """The skip connection: zero the reconstruction layer and the network is bicubic x4."""
    model = TinyDBPN()
    with torch.no_grad():
        model.reconstruct.weight.zero_()
        model.reconstruct.bias.zero_()
    low = torch.rand(1, 1, 10, 10, generator=torch.Generator().manual_seed(1))
    bicubic = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(model(low), bicubic)
