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


def test_contrast_centres_each_channel_at_its_median_and_clips_at_the_995th_percentile():
    torch.manual_seed(0)
    rec = torch.randn(3, 40, 50) + torch.tensor([5.0, -3.0, 0.0]).view(3, 1, 1)  # per-channel offsets: a tint
    rec[0, 0, 0] = 1000.0  # one hot pixel
    img = cv.to_display(rec, mode="contrast").astype(float)
    centred = rec - rec.flatten(1).median(dim=1).values.view(3, 1, 1)
    scale = torch.quantile(centred.abs().flatten(), 0.995)
    expected = ((0.5 + 0.5 * centred / scale).clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
    assert np.array_equal(img, expected)
    assert abs(img[..., 0].mean() - 128) < 3 and abs(img[..., 1].mean() - 128) < 3  # no tint
    assert img[0, 0, 0] == 255 and img.std() > 30  # the hot pixel clips instead of greying out the rest
    signed = cv.to_display(rec).astype(float)
    assert signed.std() < 3  # what the signed display makes of it: flat


def test_auto_picks_contrast_only_where_the_signed_display_is_faint():
    from cnnviz_widgets.display import choose_display, faintness

    torch.manual_seed(0)
    spread = torch.randn(3, 32, 32)  # 99.5th percentile near its peak: the signed display is readable
    faint = torch.randn(3, 32, 32) * 0.05
    faint[:, 16, 16] = 5.0  # a few hot pixels set the scale
    assert faintness(spread)[0] > 0.6 and faintness(faint)[0] < 0.1
    assert choose_display([spread, spread, faint]) == "signed" and choose_display([faint, faint, spread]) == "contrast"
    both = torch.stack([spread, faint])
    assert np.array_equal(cv.to_display(both, mode="auto"), np.stack([cv.to_display(spread), cv.to_display(faint, "contrast")]))
    assert (cv.to_display(torch.zeros(3, 4, 4), mode="contrast") == 128).all()  # blank stays grey in every mode


def test_the_fast_percentile_is_torchs_quantile():
    from cnnviz_widgets.display import upper_quantile

    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 5, 1000, 150528):
        a = torch.rand(6, n, generator=g)
        a[0] = 0
        a[1, : n // 2] = 1  # ties at the top
        assert torch.allclose(upper_quantile(a, 0.995), torch.quantile(a, 0.995, dim=1), rtol=1e-6, atol=0), n


def test_faintness_from_a_sample_chooses_as_the_whole_would():
    """Pictures over SAMPLE values are judged by a strided sample: the same display for a strip, and the
    ratio within a few hundredths of the one from every value."""
    from cnnviz_widgets.display import PERCENTILE, choose_display, faintness

    g = torch.Generator().manual_seed(1)
    strip = torch.randn(12, 3, 224, 224, generator=g) * torch.linspace(0.05, 3, 12).view(12, 1, 1, 1) ** 3
    strip[::3, :, 100:104, 100:104] = 400  # hot pixels: faint under the signed scale
    full = []
    for r in strip:
        a = r.abs().flatten()
        full.append(float(torch.quantile(a, PERCENTILE) / a.max()))
    assert np.allclose(faintness(strip), full, atol=0.03)
    assert choose_display([strip]) == ("contrast" if np.median(full) < 0.30 else "signed")


def test_a_stride_pattern_does_not_fool_the_sampled_faintness():
    """Deconvnets leave stride-2 and stride-4 patterns: a sample by stride would read only the empty columns."""
    from cnnviz_widgets.display import faintness

    for side, step in ((448, 2), (512, 2), (448, 4)):
        rec = torch.zeros(3, side, side)
        rec[..., 1::step] = torch.rand(3, side, side // step, generator=torch.Generator().manual_seed(side)) + 0.5
        a = rec.abs().flatten()
        assert abs(faintness(rec)[0] - float(torch.quantile(a, 0.995) / a.max())) < 0.02, (side, step)


def test_tiny_reconstructions_still_show():
    """A peak of 1e-40 made the display's factor (127.5 / peak) infinite in float32."""
    rec = torch.zeros(3, 6, 6)
    rec[0, 1, 1], rec[1, 2, 2] = 1e-40, -1e-40
    for mode in ("signed", "minmax", "contrast"):
        img = cv.to_display(rec, mode)
        assert img[0, 0].tolist() == [128, 128, 128] and img[1, 1, 0] == 255 and img[2, 2, 1] == 0, mode


def test_choose_display_by_counting_decides_as_the_median_of_faintnesses():
    """choose_display decides from which side of PEAK_RATIO each picture lies (a count, not a partial sort):
    the same choice as the median of the exact faintnesses, for odd and even sets, batches and single
    pictures, flat and all-zero ones, and pictures built to sit right at the line."""
    from cnnviz_widgets.display import PEAK_RATIO, PERCENTILE, SAMPLE, choose_display, faintness

    def exact(recs):
        ratios = np.concatenate([faintness(r) for r in recs])
        return "contrast" if float(np.median(ratios)) < PEAK_RATIO else "signed"

    def at_ratio(r: float, side: int, g) -> torch.Tensor:
        """A (3, side, side) picture whose faintness is close to r: a spread bulk, and one hot pixel as its peak."""
        t = torch.rand(3, side, side, generator=g) * 2 - 1
        q = float(faintness(t)[0]) * float(t.abs().max())  # the bulk's percentile
        t.view(-1)[-1] = q / r  # the peak (the percentile barely moves: one value of many)
        return t

    g = torch.Generator().manual_seed(0)
    cases = 0
    for trial in range(60):
        n = 1 + trial % 6
        side = (16, 64, 224)[trial % 3]
        ratios = np.clip(PEAK_RATIO + torch.randn(n, generator=g).numpy() * (0.2 if trial % 2 else 0.002), 0.01, 0.99)
        recs = [at_ratio(float(r), side, g) for r in ratios]
        if trial % 5 == 0:
            recs.append(torch.zeros(3, side, side))  # no signal: faintness 1
        batch = [torch.stack(recs)] if trial % 4 == 0 else recs
        assert choose_display(batch) == exact(batch), (trial, [float(faintness(r)[0]) for r in recs])
        cases += 1
    # exactly on the line, for a picture over SAMPLE values (the sampled path) and a small one
    near = 0
    for side in (16, 300):
        t = torch.rand(3, side, side, generator=g)
        t.view(-1)[-1] = 10.0
        q = float(faintness(t)[0]) * 10.0
        for peak in np.nextafter(np.float32(q / PEAK_RATIO), np.float32([0, np.inf, np.inf]), dtype=np.float32).tolist() + [q / PEAK_RATIO]:
            u = t.clone()
            u.view(-1)[-1] = peak
            near += abs(float(faintness(u)[0]) - PEAK_RATIO) < 1e-6
            assert choose_display([u]) == exact([u]) and choose_display([u, u]) == exact([u, u]), (side, peak)
            assert choose_display([u, u * 0.0 + 1]) == exact([u, u * 0.0 + 1]), (side, peak)  # an even set straddling
    assert near >= 6
    assert 3 * 300 * 300 > SAMPLE and PERCENTILE == 0.995 and cases == 60
    assert choose_display([]) == "signed"


def test_choose_display_at_the_extremes_of_float32_decides_as_before():
    """Pictures with a 1e-35 peak (below the 1e-30 guard) or all zeros are judged by their exact faintness, as the
    median rule always did; one with an overflowed value (bf16/fp16 inf) or a NaN is refused (issue 24, item 10:
    drawn, it was a flat grey or a black pixel that looked like a result)."""
    from cnnviz_widgets.display import PEAK_RATIO, choose_display, faintness

    def exact(recs):
        return "contrast" if float(np.median(np.concatenate([faintness(r) for r in recs]))) < PEAK_RATIO else "signed"

    g = torch.Generator().manual_seed(1)
    faint = torch.randn(3, 64, 64, generator=g) * 0.05
    faint[:, 3, 3] = 5.0
    spread = torch.rand(3, 64, 64, generator=g) * 2 - 1
    overflowed = spread.clone()
    overflowed[0, 0, 0] = float("inf")
    nan = spread.clone()
    nan[1, 2, 2] = float("nan")
    for recs in ([faint * 1e-35], [spread * 1e-35], [faint * 1e-38, spread], [torch.zeros(3, 64, 64), faint, faint]):
        assert choose_display(recs) == exact(recs), [float(faintness(r)[0]) for r in recs]
    for recs in ([overflowed], [overflowed, faint, faint], [nan, faint], [-overflowed, spread]):  # no picture: said
        with pytest.raises(cv.ImageError, match="no picture can show it truthfully"):
            choose_display(recs)
    assert choose_display([faint * 1e-35]) == "contrast"  # a faint picture, however small its numbers
