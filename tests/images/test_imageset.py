"""load_images / ImageSet: folders, paths, pictures, tensors, datasets; broken files and bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import cnnviz_widgets as cv


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for i, rel in enumerate(["a.jpg", "b.PNG", "sub/c.bmp", "sub/deeper/d.tiff"]):
        Image.fromarray((rng.random((20 + i, 30, 3)) * 255).astype(np.uint8)).save(tmp_path / rel)
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (tmp_path / ".hidden.png").write_bytes(b"")
    return tmp_path


def test_folder_is_listed_recursively_and_read_lazily(folder):
    with pytest.warns(UserWarning) as record:
        s = cv.load_images(folder)
    messages = " ".join(str(w.message) for w in record)
    assert "broken.jpg" in messages and "notes.txt" in messages
    assert s.names == ["a.jpg", "b.PNG", "sub/c.bmp", "sub/deeper/d.tiff"]
    assert all(isinstance(s.raw(i), str) for i in range(len(s)))  # paths, not pixels
    assert s[1].shape == (21, 30, 3) and s[1].dtype == np.uint8
    assert s[-1].shape == (23, 30, 3)
    assert len(s[1:3]) == 2 and s[1:3].names == ["b.PNG", "sub/c.bmp"]
    with pytest.raises(IndexError, match="out of range: the set has 4 pictures"):
        s[4]


def test_truncated_picture_is_skipped_when_streamed(folder, tiny):
    good = Image.open(folder / "a.jpg")
    good.save(folder / "truncated.jpg")
    data = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])  # header fine, data cut short
    probe = cv.Probe(tiny, input_size=32)
    with pytest.warns(UserWarning, match="truncated.jpg"):
        result = cv.sparsity(probe, folder, progress=False)
    assert result.n_images == 4


def test_every_source_kind():
    rgb = np.zeros((10, 12, 3), np.uint8)
    assert len(cv.load_images(rgb)) == 1
    assert len(cv.load_images([rgb, Image.fromarray(rgb), torch.rand(3, 5, 5)])) == 3
    assert len(cv.load_images(torch.rand(4, 3, 8, 8))) == 4
    assert len(cv.load_images(np.zeros((2, 8, 8, 3), np.uint8))) == 2
    pairs = cv.load_images(cv.sample_images())
    assert "chelsea" in pairs.names
    assert cv.load_images(pairs) is pairs
    assert cv.load_images(("cat", rgb)).names == ["cat"]

    class Dataset:  # torchvision-style: (picture, label) items
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return Image.fromarray(np.full((6, 6, 3), i * 40, np.uint8)), i

    ds = cv.load_images(Dataset())
    assert len(ds) == 3 and ds[2][0, 0, 0] == 80


def test_bad_sources_name_the_problem(tmp_path):
    with pytest.raises(cv.ImageError, match="nowhere.*does not exist"):
        cv.load_images(tmp_path / "nowhere")
    with pytest.raises(cv.ImageError, match="no pictures found"):
        cv.load_images(tmp_path)
    with pytest.raises(cv.ImageError, match="no images given"):
        cv.load_images([])
    with pytest.raises(cv.ImageError, match=r"missing\.png.*does not exist"):
        cv.load_images([str(tmp_path / "missing.png")])
    nan = np.zeros((4, 4, 3), np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(cv.ImageError, match=r"image 1 \(spoiled\).*NaN"):
        cv.load_images([("fine", np.zeros((4, 4, 3), np.uint8)), ("spoiled", nan)])
    with pytest.raises(cv.ImageError, match="cannot read pictures from int"):
        cv.load_images(42)
