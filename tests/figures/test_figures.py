"""cv.picture_grid: pictures where the layout puts them, labels drawn, clear background, bad input named."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cv
from cnnviz_widgets.figures import LABEL_COLOR


def _pictures(n: int, h: int = 40, w: int = 30) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_grid_places_each_picture_resized_with_clear_gaps():
    rows = [_pictures(3), _pictures(2)]
    size, gap = 50, 4
    im = cv.picture_grid(rows, size=size, gap=gap)
    assert im.mode == "RGBA" and im.size == (3 * size + 2 * gap, 2 * size + gap)
    a = np.asarray(im)
    for r, row in enumerate(rows):
        for c, p in enumerate(row):
            expected = np.asarray(Image.fromarray(p).convert("RGBA").resize((size, size), Image.BILINEAR))
            y, x = r * (size + gap), c * (size + gap)
            assert np.array_equal(a[y : y + size, x : x + size], expected)
    assert (a[size : size + gap, :, 3] == 0).all() and (a[:, size : size + gap, 3] == 0).all()  # the gaps
    assert (a[size + gap :, 2 * (size + gap) :, 3] == 0).all()  # the short row's missing place


def test_grid_labels_sit_over_columns_and_before_rows_in_grey():
    rows = [_pictures(2), _pictures(2)]
    im = cv.picture_grid(rows, column_labels=["input", "layer3.0.downsample.0"], row_labels=["astronaut", "coffee"], size=64)
    a = np.asarray(im)
    top = 13 + 6
    left = im.size[0] - 2 * 64 - 4
    assert 40 < left <= 168 and im.size[1] == top + 2 * 64 + 4
    band = a[:top, left:]
    assert (band[..., 3] > 0).any() and (a[:top, :left, 3] == 0).all()  # column labels over the columns only
    inked = band[band[..., 3] == 255][:, :3]
    assert (np.abs(inked.astype(int) - LABEL_COLOR[:3]).max(axis=1) <= 1).mean() > 0.5  # drawn in the grey
    for r in range(2):  # each row label beside its row
        assert (a[top + r * 68 : top + r * 68 + 64, :left, 3] > 0).any()
    # a label too long for its column is shortened in the middle and stays inside it
    second = a[:top, left + 68 : left + 68 + 64, 3]
    assert (second > 0).any() and (a[:top, left + 68 + 64 :, 3] == 0).all()


@pytest.mark.parametrize("rows, kwargs, message", [
    ([], {}, "rows is []: give a list of rows"),
    ([[]], {}, "each a non-empty list of pictures"),
    (np.zeros((4, 4, 3), np.uint8), {}, "give a list of rows"),
    ([[np.zeros((4, 4, 3), np.float32)]], {}, "the picture at row 0, column 0 is"),
    ([[np.zeros((4, 4, 5), np.uint8)]], {}, "give an HxWx3 uint8 picture"),
    ([[np.zeros((4, 4, 3), np.uint8)]], {"column_labels": ["a", "b"]}, "2 column labels for 1 column: give one per column"),
    ([[np.zeros((4, 4, 3), np.uint8)]] * 2, {"row_labels": ["a"]}, "1 row labels for 2 rows: give one per row"),
    ([[np.zeros((4, 4, 3), np.uint8)]], {"size": 0}, "size must be a positive whole number of pixels, got 0"),
    ([[np.zeros((4, 4, 3), np.uint8)]], {"gap": -1}, "gap must be a whole number of pixels, 0 or more, got -1"),
    ([[np.zeros((4, 4, 3), np.uint8)]], {"label_px": 2.5}, "label_px must be a positive whole number of pixels, got 2.5"),
    ([np.zeros((4, 4, 3), np.uint8)], {}, "rows is"),  # one row not wrapped in a list
])
def test_grid_names_what_is_wrong(rows, kwargs, message):
    with pytest.raises(cv.CnnvizError) as err:
        cv.picture_grid(rows, **kwargs)
    assert message in str(err.value)


def test_grid_takes_rows_from_a_generator_and_labels_that_do_not_fit_stay_inside():
    pics = _pictures(2)
    im = cv.picture_grid(([p] for p in pics), column_labels=["x" * 80], size=20)  # a generator of rows
    assert im.size == (20, 19 + 2 * 20 + 4)
    a = np.asarray(im)
    assert (a[:19, :, 3] > 0).any()  # the label is shortened to fit 20 px, not dropped


def test_sheet_texts_shrink_no_smaller_than_8_px():
    """Texts too long for their column shrink to SHEET_MIN_PX (8 px, was 6-7: unreadable projected) and are cut
    in the middle below that, the whole text kept for the SVG's tooltip."""
    from cnnviz_widgets.figures import filters_sheet, layers_sheet
    from cnnviz_widgets.figures.style import SHEET_MIN_PX

    rows = [_pictures(2, 112, 112)]
    sheet = layers_sheet(rows, [("c1", "RF " + "9" * 60), ("layer4.0.downsample.0." * 3, "RF 3 px")],
                         row_labels=["a photo with a very long name " * 4], captions=[["a caption " * 30, "x"]])
    filters_sheet("c1", None, [(123456789, _pictures(1, 40, 40)[0])], sheet=sheet, y0=400)
    sizes = [op[4] for op in sheet._ops if op[0] == "text"]
    assert SHEET_MIN_PX == 8 and min(sizes) >= 8, sorted(sizes)[:4]
    assert any(op[11] for op in sheet._ops if op[0] == "text")  # a cut text keeps its whole self for hovering
