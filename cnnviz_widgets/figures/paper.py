"""The paper's figures from a probe and pictures: each runs the kernels it needs, then a composer of :mod:`.layout`."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import checks
from ..errors import CnnvizError, short_repr
from .layout import (
    compare_sheet,
    displayed,
    field_label,
    filters_sheet,
    layers_sheet,
    metrics_caption,
    sparsity_figure,
    tile_field,
    timeline_steps,
)
from .sheet import Sheet
from .sprites import filter_sheet, filter_tile, on_white


def matching_layers(probe: Any, n: int) -> list[str]:
    """n conv layers spread evenly over the network's depth, ending with its last conv layer
    (VGG16, n=4: c2_2 c3_3 c4_3 c5_3; the paper's AlexNet: c2 c3 c4 c5)."""
    n = checks.positive_int("depths", n, "a positive whole number of layers")
    convs = [l.name for l in probe.layers if l.kind == "conv"]
    n = min(n, len(convs))
    return [convs[math.ceil((i + 1) * len(convs) / n) - 1] for i in range(n)]


def model_names(names: Any, probes: Sequence[Any]) -> list[str]:
    """The two networks' names as a comparison shows them: ``names`` checked (two strs), or each model's class
    name where None. One name, three, or a non-str would leave a network unnamed or misnamed in the figure."""
    if names is None:
        return [type(p.model).__name__ for p in probes]
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or len(names) != len(probes) \
            or not all(isinstance(n, str) for n in names):
        raise CnnvizError(f"names must be two names, one per network (strs), got {short_repr(names)}.")
    return list(names)


def probes_note(probes: Sequence[Any], names: Sequence[str] | None = None) -> str:
    """What a figure or widget made from ``probes`` says about random weights (:attr:`Probe.weights_note`; with two
    networks, which of them is random), each named by ``names`` or its zoo name (its class name where it has none);
    "" when no weights are known to be random."""
    from ..models.provenance import weights_note

    records = [p.weights for p in probes]
    shown = list(names) if names is not None else [r.model if r is not None else type(p.model).__name__
                                                   for p, r in zip(probes, records)]
    return weights_note(list(zip(shown, records)))


def sparsity_note(series: Mapping[str, Any]) -> str:
    """What Figure 6 says about random weights: each measured series' own note (:class:`cv.Sparsity` keeps its
    probe's), under its label."""
    noted = [(label, note) for label, value in series.items() if (note := getattr(value, "weights_note", ""))]
    if len(series) == 1 or not noted:
        return noted[0][1] if noted else ""
    return (f"random weights, not trained: {', '.join(label for label, _ in noted)} "
            f"({'its curve shows' if len(noted) == 1 else 'their curves show'} the architecture, not what a network "
            f"learned).")


def paper_layers(probe: Any) -> list[str]:
    """Figure 4's columns: every second conv layer (VGG16: c1_2 c2_2 c3_2 c4_1 c4_3 c5_2) and the output layer."""
    convs = [l.name for l in probe.layers if l.kind == "conv"]
    chosen = convs[1::2] or convs
    out = probe.output_layer
    return chosen + ([out.name] if out is not None and out.name not in chosen else [])


def _probe(value: Any, name: str) -> Any:
    from ..probe import Probe

    if isinstance(value, Probe):
        return value
    if hasattr(value, "state_dict") and hasattr(value, "parameters"):
        return Probe(value)
    raise CnnvizError(f"{name} must be a cv.Probe (or a torch.nn.Module to wrap in one), got {short_repr(value)}.")


def _strip(probe: Any, x: Any, names: Sequence[str], rule: str) -> tuple[dict[str, Any], str]:
    """Every named layer's reconstruction of x (the output layer seeded with the top-1 class, as the explorer and
    the paper's last column do: TopClassSeed) and that class's label ("" where the network has no class scores)."""
    from ..probe.reconstruct import TopClassSeed

    seed = TopClassSeed(probe, x, k=1)
    recs = dict(probe.reconstruct(x, layers=list(names), rule=rule, on_forward=seed))
    out = probe.output_layer
    label = seed.find()[0][1] if out is not None and out.name in names and seed.find() else ""
    return recs, label


def figure_layers(probe: Any, images: Any, layers: Any = None, rule: str = "auto", size: int = 112,
                  display: str = "auto", title: str = "") -> Any:
    """Figure 4: what each layer keeps. One row per image (the input, then each layer's reconstruction by
    ``rule``), one column per layer, labelled with the layer's name and receptive field; the output layer shows
    its top-1 class (named under the picture). ``layers`` None: every second conv layer and the output layer.
    Returns a matplotlib Figure (shown in a notebook as it is; :func:`save_figure` writes it)."""
    from ..imageset import load_images
    from ..probe.rules import rule_name, rule_words

    probe = _probe(probe, "probe")
    rule = rule_name(rule)
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    title = checks.text("title", title)
    chosen = probe.select(paper_layers(probe) if layers is None else layers)
    names = [l.name for l in chosen]
    images = load_images(images)
    rows, captions = [], []
    for i in range(len(images)):
        x = probe.model_input(images.raw(i), images.names[i])
        recs, label = _strip(probe, x, names, rule)
        rows.append([probe.to_image(x)[0], *displayed([recs[n][0] for n in names], display)])
        out = probe.output_layer
        captions.append([""] + [label if out is not None and n == out.name else "" for n in names])
    labels = [("input", f"{probe.input_size} px")] + [(n, field_label(probe.receptive_field(n), probe.input_size))
                                                      for n in names]
    sheet = layers_sheet(rows, labels, row_labels=list(images.names), captions=captions, size=size,
                         title=title or f"What each layer keeps ({rule_words(rule, chosen, probe)})")
    sheet.stamp(probe.weights_note)
    return sheet.figure()


def models_rule_words(rule: str, model_names: Sequence[str], probes: Sequence[Any], columns: Sequence[Sequence[str]]) -> str:
    """The rule that drew two networks' columns, in words: "deconvnet", "auto: deconvnet" (alike for both), or
    "VGG16: auto: deconvnet; EfficientNet: auto: guided"."""
    from ..probe.rules import rule_words

    words = [rule_words(rule, p.select(cols), p) for p, cols in zip(probes, columns)]
    return words[0] if len(set(words)) == 1 else "; ".join(f"{m}: {w}" for m, w in zip(model_names, words))


def compare_rows(probes: Sequence[Any], columns: Sequence[Sequence[str]], picture: Any, name: str, rule: str,
                 display: str = "auto", progress: Any = None) -> dict[str, Any]:
    """Figure 5 for one picture, as CompareModels shows it and figure_compare draws it: per network, its
    reconstructions at its columns as pictures (one display per network), the display, its top-5 ([] where it has
    no classes); and the input as the first network saw it. ``progress(done, total)`` over both networks."""
    from ..display import pictures
    from ..errors import UnsupportedModelError

    rows, modes, preds, first = [], [], [], None
    for j, (p, cols) in enumerate(zip(probes, columns)):
        x = p.model_input(picture, name)
        report = None if progress is None else (lambda d, t, j=j: progress(j * t + d, len(probes) * t))
        recs = p.reconstruct(x, layers=cols, rule=rule, progress=report)
        row, mode = pictures([recs[c][0] for c in cols], display)
        rows.append(row)
        modes.append(mode)
        try:
            preds.append(p.predict(x, k=5)[0])
        except UnsupportedModelError:
            preds.append([])
        first = p.to_image(x)[0] if first is None else first
    return {"input": first, "pictures": rows, "modes": modes, "predictions": preds}


def figure_compare(probe_a: Any, probe_b: Any, images: Any, layers: Any = None, depths: int = 5,
                   names: Sequence[str] | None = None, rule: str = "auto", size: int = 112,
                   display: str = "auto") -> Any:
    """Figure 5: two networks on the same images. Per image, the input, then per network a row of
    reconstructions at matching depths (each labelled with its layer and receptive field) and its top-5
    predictions as text. ``layers``: a pair of lists of layer names, or None for ``depths`` conv layers spread
    over each network (ending with its last conv layer, as CompareModels)."""
    from ..imageset import load_images
    from ..probe.rules import rule_name

    probes = [_probe(probe_a, "probe_a"), _probe(probe_b, "probe_b")]
    rule = rule_name(rule)
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    depths = checks.positive_int("depths", depths, "a positive whole number of layers")
    if layers is None:
        columns = [matching_layers(p, depths) for p in probes]
    elif isinstance(layers, (list, tuple)) and len(layers) == 2 and not isinstance(layers[0], str):
        columns = [[l.name for l in p.select(ls)] for p, ls in zip(probes, layers)]
    else:
        raise CnnvizError(f"layers must be a pair of lists of layer names (one per network) or None, got "
                          f"{short_repr(layers)}.")
    shown_names = model_names(names, probes)
    displayed([], display)  # checks the display's name before any work
    images = load_images(images)
    sheet = Sheet()
    for i in range(len(images)):
        name = images.names[i]
        found = compare_rows(probes, columns, images.raw(i), name, rule, display)
        first, rows, preds = found["input"], found["pictures"], found["predictions"]
        labels = [[(c, field_label(p.receptive_field(c), p.input_size)) for c in cols] for p, cols in zip(probes, columns)]
        words = models_rule_words(rule, shown_names, probes, columns)
        assert first is not None  # there is a probe, so a picture
        compare_sheet(first, shown_names, labels, rows, preds, size=size, title=f"{name} ({words})", sheet=sheet,
                      y0=sheet.bottom + (24 if i else 0))
    sheet.stamp(probes_note(probes, shown_names))
    return sheet.figure()


def sparsity_series(series: Any, images: Any = None) -> dict[str, Mapping[str, float]]:
    """``series`` as Figure 6 and the SparsityChart draw it: label (a str) -> {layer: fraction of zeros}. Each value
    a cv.Sparsity or any such dict, a cv.Probe (measured here over ``images``) or (probe, images); one network's
    bare {layer: fraction} dict, a probe alone, or anything else is refused with what to pass instead."""
    from ..kernels.mine import sparsity
    from ..probe import Probe

    if isinstance(series, Probe):
        raise CnnvizError("series is a probe: give it a label, {'my network': probe}, and images= to measure over "
                          "(or pass {'my network': cv.sparsity(probe, images)}).")
    if not isinstance(series, Mapping) or not series:
        raise CnnvizError(f"series must be a dict label -> sparsity (or probe), at least one, got {short_repr(series)}.")
    if all(isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) for v in series.values()):
        raise CnnvizError(f"series looks like one network's {{layer: fraction}} ({short_repr(series)}): give it a label, "
                          f"{{'my network': series}}.")
    ready: dict[str, Mapping[str, float]] = {}
    for label, value in series.items():
        if isinstance(value, tuple) and len(value) == 2:  # (probe or model, images): measured here
            value = sparsity(_probe(value[0], f"series[{label!r}][0]"), value[1], progress=False)
        elif isinstance(value, Probe):
            if images is None:
                raise CnnvizError(f"series[{label!r}] is a probe: give images= to measure its sparsity over "
                                  f"(or pass cv.sparsity(probe, images)).")
            value = sparsity(value, images, progress=False)
        if not isinstance(value, Mapping) or not value or not all(
                isinstance(k, str) and isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
                for k, v in value.items()):
            raise CnnvizError(f"series[{label!r}] must be a cv.Sparsity, a dict layer -> fraction of zeros, a probe "
                              f"or (probe, images), got {short_repr(value)}.")
        if str(label) in ready:
            raise CnnvizError(f"series has two labels that read {str(label)!r}: give each network its own label.")
        ready[str(label)] = value
    return ready


def figure_sparsity(series: Mapping[str, Any], images: Any = None,
                    title: str = "Sparsity per layer (fraction of zero activations)") -> Any:
    """Figure 6: each network's fraction of zero activations per layer against relative depth (0 its first
    layer, 1 its last), conv layers as circles and pools as squares. ``series``: label -> a cv.Sparsity (or any
    {layer: fraction} dict), a cv.Probe (measured here over ``images``), or (probe, images)."""
    title = checks.text("title", title)
    ready = sparsity_series(series, images)
    return sparsity_figure(ready, title, note=sparsity_note(ready))


def figure_filters(top: Any, filters: int | Sequence[int] = 16, per_row: int | None = None, cell: int = 32,
                   columns: int = 8) -> Any:
    """Figure 7: filters by their top patches. ``top``: a TopPatches (cv.top_patches) or several (a list, or a
    dict such as ``cv.mine(...).top``), one band per layer, labelled with its name and receptive field; each
    filter is a tile of its k patches (``per_row`` a row, ``cell`` px each), numbered. ``filters``: how many of
    each layer's filters, strongest first, or which ones."""
    from ..kernels.topk import TopPatches

    tops = list(top.values()) if isinstance(top, Mapping) else [top] if isinstance(top, TopPatches) else top
    if not isinstance(tops, (list, tuple)) or not tops or not all(isinstance(t, TopPatches) for t in tops):
        raise CnnvizError(f"top must be a TopPatches (from cv.top_patches) or a list or dict of them, got "
                          f"{short_repr(top)}.")
    cell = checks.positive_int("cell", cell, "a positive whole number of pixels")
    columns = checks.positive_int("columns", columns, "a positive whole number of tiles a row")
    sheet = Sheet()
    for n, t in enumerate(tops):
        order = [int(c) for c in np.argsort(-t.values[:, 0].numpy(), kind="stable")]
        if checks.whole(filters):
            chosen = order[: checks.positive_int("filters", filters, "a positive number of filters, or a list of them")]
        else:
            chosen = [checks.index("filter", c, t.channels, f"layer {t.layer!r} has {t.channels} filters")
                      for c in (filters if isinstance(filters, (list, tuple, range)) else [filters])]
            if not chosen:
                raise CnnvizError("filters is empty: name at least one filter, or give how many (the strongest).")
        across = per_row if per_row is not None else math.ceil(math.sqrt(t.k))
        across = checks.positive_int("per_row", across, "a positive whole number of patches a row")
        tiles = [(c, filter_tile(t, c, across, cell)) for c in chosen]
        filters_sheet(t.layer, t.receptive_field(), tiles, columns=columns, sheet=sheet, field=tile_field(t),
                      y0=sheet.bottom + (16 if n else 0), title=f"{t.k} top patch{'' if t.k == 1 else 'es'} a filter")
    sheet.stamp(probes_note(list({id(t._probe): t._probe for t in tops}.values())))
    return sheet.figure()


def figure_timeline(checkpoints: Any, image: Any, layers: Any = None, steps: Sequence[int] | None = None,
                    rule: str = "auto", size: int = 96, display: str = "auto", title: str = "") -> Any:
    """How a network learns: one row per checkpoint (``steps``, default up to six spread over the training), each
    the input with that step's metrics under it, the first layer's filters, then each layer's reconstruction of
    ``image`` by ``rule`` (``layers`` None: every second conv layer and the output layer, seeded with that step's
    top-1 class, named under it). ``checkpoints``: a cv.Checkpoints. Returns a matplotlib Figure."""
    from ..imageset import load_images
    from ..kernels.checkpoints import Checkpoints
    from ..kernels.filters import filter_pictures, first_conv
    from ..probe.rules import rule_name, rule_words

    if not isinstance(checkpoints, Checkpoints):
        raise CnnvizError(f"checkpoints must be a cv.Checkpoints, got {short_repr(checkpoints)}.")
    title = checks.text("title", title)
    rule = rule_name(rule)
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    probe = checkpoints.probe
    chosen = probe.select(paper_layers(probe) if layers is None else layers)
    names = [l.name for l in chosen]
    images = load_images(image)
    if len(images) != 1:
        raise CnnvizError(f"image must be one picture (a timeline follows one picture over the steps), got {len(images)}.")
    x = checkpoints.model_input(images.raw(0), images.names[0])
    shown = timeline_steps(len(checkpoints)) if steps is None else [checkpoints.index(s) for s in steps]
    out = probe.output_layer
    rows, captions, labels_left = [], [], []
    for i in shown:
        p = checkpoints.load(i)
        recs, label = _strip(p, x, names, rule)
        filters = filter_sheet(filter_pictures(p))
        rows.append([p.to_image(x)[0], on_white(filters),
                     *displayed([recs[n][0] for n in names], display)])
        captions.append([metrics_caption(checkpoints.metrics, i), ""] +
                        [label if out is not None and n == out.name else "" for n in names])
        labels_left.append(f"step {checkpoints.steps[i]}")
    labels = [("input", f"{probe.input_size} px"), ("filters", first_conv(probe))] + [
        (n, field_label(probe.receptive_field(n), probe.input_size)) for n in names]
    heading = title or f"How {type(probe.model).__name__} learns: {images.names[0]} ({rule_words(rule, chosen, probe)})"
    sheet = layers_sheet(rows, labels, row_labels=labels_left, captions=captions, size=size, title=heading)
    sheet.stamp(probe.weights_note)  # checkpoints are loaded weights: nothing, unless the probe says otherwise
    return sheet.figure()


def figure_class_maps(probe: Any, images: Any, classes: Any = None, layer: str | None = None,
                      method: str = "gradcam", opacity: float = 0.5, size: int = 112, title: str = "") -> Any:
    """Where the network finds each class: one row per image (the input, then one class map per column laid over
    it, see :func:`cnnviz_widgets.display.overlay`). ``classes``: class indices or labels, one column each, the same
    for every image; None: each image's own top 3 (named under each picture with its probability). ``method`` and
    ``layer`` as :meth:`Probe.class_map` takes them. Returns a matplotlib Figure (:func:`save_figure` writes it)."""
    from ..display import overlay
    from ..imageset import load_images
    from ..probe.class_map import check_method, class_targets, spatial_layer

    probe = _probe(probe, "probe")
    title = checks.text("title", title)
    method = check_method(method)
    if method == "guided-gradcam":
        raise CnnvizError("figure_class_maps lays maps over the picture: use method='gradcam' or 'gradcam++' "
                          "(a guided Grad-CAM is a reconstruction: draw it with probe.class_map and cv.to_display).")
    size = checks.positive_int("size", size, "a positive whole number of pixels")
    at = spatial_layer(probe, layer)
    named = None if classes is None else [classes] if isinstance(classes, (str, int)) or checks.whole(classes) else list(classes)
    columns = class_targets(probe, named, len(named)) if named is not None else None
    images = load_images(images)
    rows, captions = [], []
    for i in range(len(images)):
        x = probe.model_input(images.raw(i), images.names[i])
        top = probe.classify(x, k=3)[0]
        picks = columns if columns is not None else [c for c, _, _ in top]
        maps = probe.class_map(x.expand(len(picks), -1, -1, -1), layer=at, target=picks, method=method)
        picture = probe.to_image(x)[0]
        rows.append([picture] + [overlay(picture, m[0].cpu().numpy(), opacity) for m in maps])
        captions.append([""] + (["" for _ in picks] if columns is not None else [f"{label} {p:.0%}" for _, label, p in top]))
    labels = [("input", f"{probe.input_size} px")]
    if columns is not None:
        from ..probe.labels import shown_labels

        names = shown_labels(probe.labels) if probe.labels else None
        labels += [(names[c] if names else f"class {c}", f"class {c}") for c in columns]
    else:
        labels += [(f"top-{k}", "") for k in range(1, len(rows[0]))]
    sheet = layers_sheet(rows, labels, row_labels=list(images.names), captions=captions, size=size,
                         title=title or f"Where each class is found ({method} at {at.name})")
    sheet.stamp(probe.weights_note)
    return sheet.figure()
