"""to_display: zero is mid-gray, scaled by the largest magnitude per image; minmax stretches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnviz_widgets as cv


def test_signed_maps_zero_to_gray_per_image():
    rec = torch.zeros(2, 3, 4, 4)
    rec[0, 0, 0, 0] = 2.0
    rec[0, 1, 1, 1] = -1.0
    rec[1, 2, 3, 3] = -0.001
    img = cv.to_display(rec)
    assert img.shape == (2, 4, 4, 3) and img.dtype == np.uint8
    assert img[0, 0, 0, 0] == 255 and img[0, 1, 1, 1] == 64 and img[0, 2, 2, 2] == 128
    assert img[1, 3, 3, 2] == 0  # scaled per image
    assert (cv.to_display(torch.zeros(3, 5, 5)) == 128).all()  # blank reconstruction is gray
    assert cv.to_display(np.ones((3, 2, 2), np.float32)).shape == (2, 2, 3)


def test_minmax_stretches():
    rec = torch.linspace(-1, 3, 3 * 4 * 4).reshape(3, 4, 4)
    img = cv.to_display(rec, mode="minmax")
    assert img.min() == 0 and img.max() == 255


def test_bad_display_input():
    with pytest.raises(cv.ImageError, match="mode must be"):
        cv.to_display(torch.zeros(3, 2, 2), mode="log")
    with pytest.raises(cv.ImageError, match=r"\(3, H, W\)"):
        cv.to_display(torch.zeros(2, 2))
