"""The representation space of a layer (paper section 4.1, Fig. 3): patches embedded by t-SNE on a grid.

Sample units (image, y, x) of a layer, take their C-dim activation vectors, PCA to at most 50
dimensions, t-SNE to 2-D (openTSNE's Barnes-Hut, chosen by measurement: see
benchmarks/bench_embedding.py), and fill a grid x grid layout where each cell shows the patch
whose embedding point is nearest the cell's centre.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import checks
from ..errors import CnnvizError, short_repr
from ..imageset import ImageSet, load_images
from ..probe.probe import Probe
from .patches import PatchSource
from .options import StreamOptions, stream_options
from .stream import stream_activations

TSNE_DEFAULTS = dict(perplexity=30.0, early_exaggeration_iter=125, n_iter=250, theta=0.8,
                     negative_gradient_method="bh", initialization="pca")


def unit_scale(xy: np.ndarray) -> np.ndarray:
    """Min-max scale each axis to [0, 1] (a constant axis becomes 0.5)."""
    lo, hi = xy.min(0), xy.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = (xy - lo) / span
    out[:, hi <= lo] = 0.5
    return out


def grid_fill(points: np.ndarray, grid: int, region: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)) -> np.ndarray:
    """(grid, grid) index of the point nearest each cell centre; cell (i, j) of ``region`` (x0, y0, x1, y1)
    has centre (x0 + (j+0.5)/grid * (x1-x0), y0 + (i+0.5)/grid * (y1-y0))."""
    from sklearn.neighbors import KDTree

    x0, y0, x1, y1 = region
    centres = (np.arange(grid) + 0.5) / grid
    cx = x0 + centres * (x1 - x0)
    cy = y0 + centres * (y1 - y0)
    query = np.stack(np.meshgrid(cx, cy, indexing="xy"), -1).reshape(-1, 2)  # row i varies y, column j x
    _, nearest = KDTree(points).query(query, k=1)
    return nearest.reshape(grid, grid)


def check_tsne(tsne: Any) -> None:
    """``tsne``: None or a dict of openTSNE.TSNE options; a CnnvizError names a misspelt one before any work."""
    if tsne is None:
        return
    if not isinstance(tsne, dict):
        raise CnnvizError(f"tsne must be a dict of openTSNE.TSNE options (e.g. {{'perplexity': 50}}), got {short_repr(tsne)}.")
    import openTSNE

    unknown = sorted(set(tsne) - set(inspect.signature(openTSNE.TSNE).parameters))
    if unknown:
        raise CnnvizError(f"tsne has option(s) {', '.join(map(repr, unknown))} that openTSNE.TSNE does not take; "
                          f"see help(openTSNE.TSNE) (perplexity, n_iter, theta, ...).")


def embed(features: np.ndarray, seed: int, tsne: dict[str, Any] | None = None, n_jobs: int = 2,
          progress: Callable[[float], None] | None = None) -> np.ndarray:
    """PCA to at most 50 dimensions, then 2-D t-SNE (openTSNE Barnes-Hut); deterministic for a seed.

    ``progress(fraction)`` is called every 25 t-SNE iterations; an exception it raises (a widget's
    Stop) ends the optimisation there.
    """
    from sklearn.decomposition import PCA

    n, d = features.shape
    if n < 2:
        return np.zeros((n, 2), np.float32)
    dims = min(50, d, n)
    z = PCA(n_components=dims, random_state=seed).fit_transform(features) if dims < d else features - features.mean(0)
    z = np.ascontiguousarray(z, dtype=np.float32)
    if n < 8:  # too few points for t-SNE's neighbourhoods: the first two principal axes
        return np.pad(z[:, :2], ((0, 0), (0, max(0, 2 - z.shape[1]))))
    import openTSNE

    check_tsne(tsne)
    params: dict[str, Any] = dict(TSNE_DEFAULTS)
    params.update(tsne or {})
    params["perplexity"] = min(params["perplexity"], (n - 1) / 3.0)
    if progress is not None:
        total = params["early_exaggeration_iter"] + params["n_iter"]
        done = [0]

        def tick(iteration: int, error: float, embedding: Any) -> bool:
            done[0] += 25  # openTSNE counts each phase's iterations from 1
            progress(min(1.0, done[0] / total))
            return False

        params.update(callbacks=[tick], callbacks_every_iters=25)
    try:
        tsne_ = openTSNE.TSNE(n_components=2, random_state=seed, n_jobs=n_jobs, verbose=False, **params)
    except (TypeError, ValueError) as exc:
        raise CnnvizError(f"openTSNE refused the tsne options {short_repr(tsne)}: {exc}") from exc
    try:
        return np.asarray(tsne_.fit(z), dtype=np.float32)
    except (TypeError, ValueError) as exc:  # a value openTSNE checks only when it runs (perplexity=-1 ...)
        raise CnnvizError(f"openTSNE refused the tsne options {short_repr(tsne)}: {exc}") from exc


@dataclass
class RepresentationSpace:
    """A layer's representation space as a grid of patches.

    units (N, 3): image index, y, x of each sampled unit; features (N, C) their activations;
    xy (N, 2) the embedding; grid_index (G, G) the unit shown in each cell of ``region``
    (x0, y0, x1, y1 in the min-max scaled embedding; the whole plane is (0, 0, 1, 1)).
    """

    layer: str
    units: torch.Tensor
    features: torch.Tensor
    xy: np.ndarray
    grid_index: np.ndarray
    region: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    _probe: Probe | None = field(default=None, repr=False)
    _source: PatchSource | None = field(default=None, repr=False)
    _effective: Any = field(default=None, repr=False)

    @property
    def grid(self) -> int:
        return int(self.grid_index.shape[0])

    @property
    def xy_unit(self) -> np.ndarray:
        """The embedding min-max scaled to [0, 1] per axis, the space the grid is laid in."""
        return unit_scale(self.xy)

    def zoom(self, x0: float, y0: float, x1: float, y1: float) -> RepresentationSpace:
        """The sub-rectangle (in the scaled plane) re-laid at the full grid resolution."""
        if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
            raise CnnvizError(f"zoom needs 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got ({x0}, {y0}, {x1}, {y1}).")
        region = (float(x0), float(y0), float(x1), float(y1))
        return RepresentationSpace(self.layer, self.units, self.features, self.xy,
                                   grid_fill(self.xy_unit, self.grid, region), region, self._probe, self._source,
                                   self._effective)

    def _unit(self, i: int) -> tuple[int, ...]:
        i = checks.index("unit", i, len(self.units), f"{len(self.units)} units were sampled")
        return tuple(int(v) for v in self.units[i])

    def _attached(self) -> tuple[Probe, PatchSource]:
        """The probe and pictures representation_space() attached, or a CnnvizError for one built by hand."""
        if self._probe is None or self._source is None:
            raise CnnvizError("This RepresentationSpace has no probe and pictures attached (it was built by hand); "
                              "make one with representation_space().")
        return self._probe, self._source

    @property
    def field_kind(self) -> str:
        """Which field the patches are cropped to: "theoretical", or "effective" where the receptive field is wider
        than the picture (as :attr:`TopPatches.field_kind`)."""
        from .effective import is_wider_than_picture

        probe = self._attached()[0]
        return "effective" if is_wider_than_picture(probe, probe.field_or_error(self.layer)) else "theoretical"

    def patch_field(self) -> Any:
        """The field the patches are cropped to: the receptive field, or the effective field measured over up to eight
        of the sampled pictures (at most the picture's side)."""
        probe, source = self._attached()
        rf = probe.field_or_error(self.layer)
        if self.field_kind == "theoretical":
            return rf
        if self._effective is None:
            from .effective import PICTURES, patch_field

            found = sorted({int(v) for v in self.units[:, 0].tolist()})[:PICTURES]
            self._effective = patch_field(probe, self.layer, source.model_input(found))
        return self._effective

    def patch(self, i: int) -> np.ndarray:
        """uint8 (S, S, 3) crop of sampled unit ``i``: its receptive field, or where that is wider than the picture
        its effective field (``field_kind``)."""
        from .effective import patch_box
        from .patches import crop_padded

        img, y, x = self._unit(i)
        probe, source = self._attached()
        box = patch_box(probe, self.patch_field(), y, x, self.field_kind == "effective")
        return crop_padded(source.seen(img), box, source.fill)

    def top_filters(self, i: int, k: int = 6) -> list[int]:
        """The k channels with the highest activation at unit ``i``, highest first (ties: lower channel)."""
        self._unit(i)
        k = checks.positive_int("k", k)
        order = torch.argsort(self.features[int(i)], descending=True, stable=True)
        return [int(c) for c in order[: int(k)]]

    def mosaic(self, cell: int = 32) -> np.ndarray:
        """The grid as one uint8 picture (G*cell, G*cell, 3), each patch resized to ``cell`` pixels."""
        from PIL import Image

        g = self.grid
        out = np.zeros((g * cell, g * cell, 3), np.uint8)
        cache: dict[int, np.ndarray] = {}
        for (i, j), u in np.ndenumerate(self.grid_index):
            if u not in cache:
                cache[u] = np.asarray(Image.fromarray(self.patch(u)).resize((cell, cell), Image.Resampling.BILINEAR))
            out[i * cell : (i + 1) * cell, j * cell : (j + 1) * cell] = cache[u]
        return out


def sample_units(n_images: int, hw: tuple[int, int], n_patches: int, seed: int) -> np.ndarray:
    """(n, 3) distinct (image, y, x) drawn uniformly from all units of the set, sorted."""
    h, w = hw
    total = n_images * h * w
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(total, size=min(n_patches, total), replace=False))
    return np.stack([flat // (h * w), (flat % (h * w)) // w, flat % w], 1)


def representation_space(
    probe: Probe,
    images: Any,
    layer: str,
    n_patches: int = 5000,
    grid: int = 40,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool | Callable[[int, int], None] = True,
    tsne: dict[str, Any] | None = None,
    *,
    options: StreamOptions | None = None,
    **stream_kwargs: Any,
) -> RepresentationSpace:
    """Sample units of ``layer``, embed their activation vectors in 2-D, lay patches on a grid.

    ``options`` / keywords: how pictures are read and run (:class:`~cnnviz_widgets.kernels.options.StreamOptions`).
    """
    n_patches = checks.positive_int("n_patches", n_patches)
    grid = checks.positive_int("grid", grid)
    seed = checks.non_negative_int("seed", seed)
    if seed >= 2**32:
        raise CnnvizError(f"seed must be below 2**32 (scikit-learn's limit), got {seed}.")
    check_tsne(tsne)
    opts = stream_options(options, batch_size=batch_size, **stream_kwargs)
    l = probe.layer(layer)
    imageset: ImageSet = load_images(images)
    units = sample_units(len(imageset), l.shape[1:], n_patches, seed)
    needed: Sequence[int] = np.unique(units[:, 0]).tolist()
    by_image: dict[int, np.ndarray] = {}
    for i in needed:
        by_image[i] = np.nonzero(units[:, 0] == i)[0]
    features = torch.zeros((len(units), l.channels), dtype=torch.float32)
    filled = torch.zeros(len(units), dtype=torch.bool)
    # a callable progress sees (done, 1000): the data pass is the first half of the work, t-SNE the second
    stream_progress = (lambda d, t: progress(round(500 * d / t), 1000)) if callable(progress) else progress
    batches = stream_activations(probe, imageset, [l], indices=needed, progress=stream_progress,
                                 desc=f"representation {l.name}", options=opts)
    try:
        for index, acts in batches:
            act = acts[l.name]
            for row, img in enumerate(index.tolist()):
                rows = torch.as_tensor(by_image[img])
                ys = torch.as_tensor(units[rows, 1], device=act.device)
                xs = torch.as_tensor(units[rows, 2], device=act.device)
                features[rows] = act[row][:, ys, xs].T.float().cpu()
                filled[rows] = True
            del index, acts, act  # free this batch before the next forward
    finally:
        batches.close()
    if not filled.all():  # units of pictures that could not be read (each reported by the stream) are left out
        keep = filled.numpy()
        units, features = units[keep], features[filled]
    n_jobs = max(1, torch.get_num_threads())
    report = progress if callable(progress) else None
    xy = embed(features.numpy(), seed, tsne, n_jobs=n_jobs,
               progress=None if report is None else lambda f: report(500 + round(500 * f), 1000))
    grid_index = grid_fill(unit_scale(xy), grid)
    return RepresentationSpace(l.name, torch.as_tensor(units), features, xy, grid_index,
                               _probe=probe, _source=PatchSource(probe, imageset))
