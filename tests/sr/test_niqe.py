"""NIQE against the reference implementation's values, and its basic sense of quality."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
skimage_data = pytest.importorskip("skimage.data")
from skimage.filters import gaussian  # noqa: E402

from jobs.examples.sr.niqe import imresize, niqe, pristine_model  # noqa: E402

# Computed with BasicSR 1.4.2 ``calculate_niqe(img, crop_border=0)`` (the reference that matches
# the authors' MATLAB release; it calculates in float32, hence the tolerance) on the images as
# shipped in scikit-image 0.26 (RGB given to it in its BGR order).
REFERENCE_NIQE = {"camera": 3.096206619345783, "chelsea": 2.6255243812915023,
                  "coins": 3.622671715936883}


@pytest.mark.parametrize("name", sorted(REFERENCE_NIQE))
def test_matches_the_reference_implementation(name: str) -> None:
    image = getattr(skimage_data, name)()
    assert niqe(image) == pytest.approx(REFERENCE_NIQE[name], abs=1e-4)


def test_pristine_model_has_the_published_shapes() -> None:
    mean, covariance, window = pristine_model()
    assert mean.shape == (36,) and covariance.shape == (36, 36) and window.shape == (7, 7)
    assert np.allclose(covariance, covariance.T) and window.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(REFERENCE_NIQE))
def test_degraded_images_score_worse(name: str) -> None:
    """Blur and a x4 bicubic round trip (the SR baseline) both move an image away from the
    pristine model: higher NIQE, more so for the stronger blur."""
    image = getattr(skimage_data, name)().astype(np.float64)
    axis = -1 if image.ndim == 3 else None
    mild = gaussian(image, sigma=1, channel_axis=axis, preserve_range=True)
    strong = gaussian(image, sigma=3, channel_axis=axis, preserve_range=True)
    grey = image if image.ndim == 2 else image.mean(axis=2)
    grey = grey[: grey.shape[0] // 4 * 4, : grey.shape[1] // 4 * 4]
    round_trip = imresize(imresize(grey, 0.25), 4)
    assert niqe(image) < niqe(mild) < niqe(strong)
    assert niqe(grey) < niqe(round_trip)


def test_imresize_matches_matlab_bicubic() -> None:
    """Values from BasicSR's MATLAB-equivalent ``imresize`` (float32, hence the tolerance)."""
    ramp = np.arange(36, dtype=np.float64).reshape(6, 6) ** 2 / 35**2
    expected = np.array([[0.0110616153, 0.0250573996, 0.0458516516],
                         [0.1990529299, 0.2542474568, 0.3162404001],
                         [0.6317890882, 0.7281823754, 0.8313741088]])
    assert np.allclose(imresize(ramp, 0.5), expected, atol=1e-7)
    assert np.allclose(imresize(np.full((7, 9), 0.3), 0.25), 0.3)


def test_too_small_image_is_refused() -> None:
    with pytest.raises(ValueError, match="at least two 96x96 blocks"):
        niqe(np.zeros((150, 150)))
