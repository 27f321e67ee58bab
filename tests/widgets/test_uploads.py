"""New pictures from the browser (uploads, drops, pastes, webcam snapshots): the bytes of a custom message's buffer,
through the one picture pipeline, joining the list; what is refused is said and changes nothing."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.widgets.uploads import MAX_UPLOADS, upload_name


@pytest.fixture(scope="module", autouse=True)
def exact_pictures():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNVIZ_PICTURES", "bmp")
        yield


def jpeg(picture: np.ndarray, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="JPEG", quality=90, **options)
    return buf.getvalue()


def png(picture: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    return buf.getvalue()


def send(widget, data: bytes | None, name: str, **extra) -> None:
    """What the browser sends: a custom message with the file's bytes as its buffer."""
    widget._on_custom_msg(widget, {"event": "upload", "name": name, **extra}, [] if data is None else [data])


@pytest.fixture(scope="module")
def small_probe() -> cv.Probe:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))
    return cv.Probe(net, input_size=32, device="cpu")


def test_an_upload_joins_the_list_and_is_shown(alex_probe, photos, tmp_path):
    w = cv.DeconvExplorer(alex_probe, photos[:2])
    before, recs_before = list(w.image_names), list(w.recs)
    coffee = dict(photos)["coffee"]
    data = jpeg(coffee)
    send(w, data, "C:\\Users\\me\\my coffee.jpg")
    assert w.error == "" and w.image_names == before + ["my coffee.jpg"]
    assert w.image_index == w.shown_image == 2 and all(w.recs) and w.recs != recs_before
    # the same picture as the file given by path: one pipeline
    path = tmp_path / "my coffee.jpg"
    path.write_bytes(data)
    x = alex_probe.model_input(str(path))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(w.input_png)).convert("RGB")), alex_probe.to_image(x)[0])
    assert torch.equal(alex_probe.model_input(w._images.raw(2)), x)
    send(w, png(coffee), "my coffee.jpg")  # the same name again: made unique
    assert w.image_names[-1] == "my coffee.jpg (2)" and w.image_index == 3


def test_refused_pictures_are_said_and_change_nothing(small_probe, photos, monkeypatch):
    w = cv.DeconvExplorer(small_probe, photos[:2])
    names, index, recs = list(w.image_names), w.image_index, list(w.recs)

    def unchanged():
        assert w.image_names == names and w.image_index == index and w.recs == recs

    send(w, b"x" * (26 * 2**20), "huge.jpg")
    assert "huge.jpg is 26.0 MB: pictures of up to 25 MB are accepted" in w.error
    unchanged()
    send(w, None, "huger.jpg", size=40 * 2**20)  # the browser does not send what is too large, only its size
    assert "huger.jpg is 40.0 MB: pictures of up to 25 MB" in w.error
    unchanged()
    send(w, b"Dear diary, today I renamed a text file.", "notes.jpg")
    assert w.error.startswith("notes.jpg is not a readable picture (UnidentifiedImageError")
    unchanged()
    good = jpeg(photos[0][1])
    send(w, good[: len(good) // 3], "cut.jpg")  # a damaged (truncated) JPEG
    assert w.error.startswith("cut.jpg is not a readable picture") and "truncated" in w.error
    unchanged()
    send(w, b"", "empty.png")
    assert "empty.png is empty (0 bytes)" in w.error
    unchanged()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 64x64 PNG is then a decompression bomb
    send(w, png(np.zeros((64, 64, 3), np.uint8)), "bomb.png")
    assert "bomb.png: Image size (4096 pixels) exceeds limit" in w.error and "decompression bomb" in w.error
    unchanged()
    w._on_custom_msg(w, {"event": "upload", "name": "nothing.jpg"}, [])
    assert "The browser sent no picture for nothing.jpg" in w.error
    unchanged()


def test_exif_orientation_is_applied(small_probe):
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[:, :30] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show it rotated 90 degrees clockwise
    w = cv.DeconvExplorer(small_probe, [np.zeros((32, 32, 3), np.uint8)])
    w.add_picture(jpeg(picture, exif=exif), "turned.jpg")
    upright = w._images.raw(1)
    assert tuple(upright.shape) == (3, 60, 40) and upright[:, :20].float().mean() > 200  # white on top


def test_a_hundred_uploads_keep_memory_bounded(small_probe, photos):
    w = cv.DeconvExplorer(small_probe, photos[:2])
    pictures = [jpeg(np.full((300, 400, 3), i, np.uint8)) for i in range(100)]
    for i, data in enumerate(pictures):
        w.add_picture(data, f"shot {i}.jpg")
        assert w.error == "" and w.shown_image == w.image_index == len(w.image_names) - 1
    assert len(w._uploads) == MAX_UPLOADS and len(w.image_names) == 2 + MAX_UPLOADS
    assert w.image_names[:2] == [n for n, _ in photos[:2]]
    assert w.image_names[2:] == [f"shot {i}.jpg" for i in range(100 - MAX_UPLOADS, 100)]
    assert "the oldest upload, shot 79.jpg, left the list (20 uploads are kept)" in w.notice
    kept = sum(t.numel() * t.element_size() for t in w._uploads)
    assert kept == MAX_UPLOADS * 150 * 200 * 3  # each reduced early as a file is (2x2 boxes: 300 px > 4 x 32)
    assert int(w._images.raw(len(w.image_names) - 1).float().mean().round()) == 99  # the last one is the last shot


def test_compare_models_takes_uploads(small_probe, alex_probe, photos):
    w = cv.CompareModels(alex_probe, small_probe, photos[:1])
    rows = w.rows
    send(w, jpeg(dict(photos)["coffee"]), "mine.jpg")
    assert w.error == "" and w.image_names[-1] == "mine.jpg" and w.shown_image == 1 and w.rows != rows
    send(w, b"not a picture", "bad.png")
    assert "bad.png is not a readable picture" in w.error and w.image_names[-1] == "mine.jpg"


def test_upload_names():
    assert upload_name("/home/me/cat.png", []) == "cat.png"
    assert upload_name("", []) == "upload"
    assert upload_name("a.jpg", ["a.jpg", "a.jpg (2)"]) == "a.jpg (3)"
    assert len(upload_name("x" * 300 + ".jpg", [])) == 77


def test_live_frames_show_the_layer_on_screen(alex_probe, photos):
    from cnnviz_widgets.widgets.jobs import Job

    w = cv.DeconvExplorer(alex_probe, photos[:1])
    names, recs = list(w.image_names), list(w.recs)
    frame = jpeg(dict(photos)["coffee"])
    w.layer = "c3"
    w._on_custom_msg(w, {"event": "frame", "n": 1, "t": 12.5}, [frame])
    assert w.error == "" and w.live_frame == {"n": 1, "t": 12.5, "layer": "c3", "dropped": 0}
    x = alex_probe.model_input(frame)
    rec = alex_probe.reconstruct(x, layers="c3", rule="auto")["c3"][0]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(w.live_rec_png)).convert("RGB")), cv.to_display(rec))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(w.live_input_png)).convert("RGB")), alex_probe.to_image(x)[0])
    assert w.image_names == names and w.recs == recs  # a live frame joins nothing
    # while a frame is worked on, a newer one waits and the one after replaces it (never a queue)
    busy = Job("live", "a frame")
    w._live_job, w._jobs[busy.id] = busy, busy
    w._on_custom_msg(w, {"event": "frame", "n": 2, "t": 1.0}, [frame])
    w._on_custom_msg(w, {"event": "frame", "n": 3, "t": 2.0}, [frame])
    assert w._live_next[1] == 3 and w._live_dropped == 1 and w.live_frame["n"] == 1
    del w._jobs[busy.id]
    w._on_custom_msg(w, {"event": "live", "on": False}, [])
    assert w.live_frame == {} and w.live_input_png == b"" and w._live_next is None
    w._on_custom_msg(w, {"event": "frame", "n": 4, "t": 3.0}, [b"garbage"])
    assert "the camera's picture is not a readable picture" in w.error
