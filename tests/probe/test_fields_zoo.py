"""Receptive fields are exact or None (issue 22, item 4): ops that move values between positions, ops that mix
every position, space-to-depth, copying pads; real networks (timm) against the gradient-support oracle; and the
time-bounded measurement of what tracing cannot give."""
from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnviz_widgets as cv
from oracles import supports, traced_output, unit_support

from cnnviz_widgets.probe.receptive_field import positive_copy, support_mode


def assert_exact(probe: cv.Probe, net: nn.Module, name: str, every: int = 1) -> None:
    """The traced field of ``name``, clipped to the input, is every unit's gradient support."""
    rf, side = probe.receptive_field(name), probe.input_size
    assert rf is not None, name
    for (y, x), got in supports(net, probe.layer(name).module_path, side, every).items():
        t, l, b, r = rf.box(y, x)
        assert got == (max(t, 0), max(l, 0), min(b, side), min(r, side)), (name, (y, x), got, rf)


def assert_whole(probe: cv.Probe, net: nn.Module, name: str, every: int = 3) -> None:
    rf, side = probe.receptive_field(name), probe.input_size
    assert rf is not None and rf.is_global and rf.size == side, (name, rf)
    for unit, got in supports(net, probe.layer(name).module_path, side, every).items():
        assert got == (0, 0, side, side), (name, unit, got)


class Moved(nn.Module):
    """c1, then ``op`` (a transpose of rows and columns), a (1, 5) conv c2 on the swapped map, ``back`` and c3."""

    def __init__(self, op, back=None):
        super().__init__()
        self.op, self.back = op, back
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, (1, 5), padding=(0, 1)), nn.Conv2d(4, 4, 3)

    def forward(self, x):
        y = self.c2(self.op(self.c1(x)))
        return self.c3(self.back(y) if self.back is not None else y)


SWAPS = {
    "transpose": lambda a: a.transpose(2, 3), "mT": lambda a: a.mT, "swapaxes": lambda a: a.swapaxes(-1, -2),
    "movedim": lambda a: torch.movedim(a, 3, 2), "einsum": lambda a: torch.einsum("nchw->ncwh", a),
    "permute": lambda a: a.permute(0, 1, 3, 2),
}


@pytest.mark.parametrize("op", list(SWAPS))
def test_swapped_rows_and_columns_are_followed_or_none(op):
    """A map whose rows and columns are swapped has no field of its own (unit (y, x) reads picture rows around
    x); swapped back, the (1, 5) kernel lies on the picture's rows: (11, 3) + c3, not (3, 11)."""
    torch.manual_seed(0)
    net = Moved(SWAPS[op], SWAPS[op]).eval()
    probe = cv.Probe(net, input_size=14)
    assert probe.receptive_field("c2") is None
    assert probe.receptive_field("c3").size_yx == (3 + 4 + 2, 3 + 2)
    assert_exact(probe, net, "c3", every=2)
    alone = cv.Probe(Moved(SWAPS[op]).eval(), input_size=14)  # never swapped back: nothing after it has a field
    assert alone.receptive_field("c2") is None and alone.receptive_field("c3") is None


class Mover(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.register_buffer("m", torch.rand(16, 16))

    def forward(self, x):
        return self.c2(self.op(self, self.c1(x)))


MOVERS = {
    "add_transposed": lambda s, a: a + a.permute(0, 1, 3, 2),
    "rows_by_list": lambda s, a: a[:, :, [3, 1, 2, 0] * 4],
    "columns_by_tensor": lambda s, a: a[..., torch.arange(15, -1, -1)],
    "matmul_columns": lambda s, a: a @ s.m,
    "einsum_columns": lambda s, a: torch.einsum("nchw,wv->nchv", a, s.m),
    "softmax_columns": lambda s, a: a.softmax(-1),
    "index_select_rows": lambda s, a: a.index_select(2, torch.arange(16).flip(0)),
}


@pytest.mark.parametrize("op", list(MOVERS))
def test_ops_that_move_values_between_positions_give_none(op):
    torch.manual_seed(0)
    probe = cv.Probe(Mover(MOVERS[op]).eval(), input_size=16)
    assert probe.receptive_field("c1") is not None
    assert probe.receptive_field("c2") is None


KEEPERS = {
    "channels_by_list": lambda s, a: a[:, [3, 1, 2, 0]],
    "channel_index_select": lambda s, a: a.index_select(1, torch.tensor([1, 0, 3, 2])),
    "channels_last_matmul": lambda s, a: (a.permute(0, 2, 3, 1) @ s.m[:4, :4]).permute(0, 3, 1, 2),
    "flattened_and_back": lambda s, a: a.flatten(2).reshape(a.shape),
    "channel_softmax": lambda s, a: a.softmax(1),
    "channel_shuffle_view": lambda s, a: a.view(1, 2, 2, 16, 16).transpose(1, 2).reshape(1, 4, 16, 16),
}


@pytest.mark.parametrize("op", list(KEEPERS))
def test_ops_that_keep_positions_keep_exact_fields(op):
    torch.manual_seed(0)
    net = Mover(KEEPERS[op]).eval()
    probe = cv.Probe(net, input_size=16)
    assert probe.receptive_field("c2") == cv.ReceptiveField(5, 1, -2)
    assert_exact(probe, net, "c2", every=3)


@pytest.mark.parametrize("mode,kernel,pad,exact", [
    ("circular", 3, 1, False), ("reflect", 3, 1, True), ("reflect", 3, 2, False), ("reflect", 5, 2, True),
    ("reflect", 4, 2, False), ("reflect", 4, 1, True), ("replicate", 3, 1, True), ("replicate", 3, 3, False),
])
def test_copying_pads_are_exact_only_where_every_copy_lies_in_the_units_own_box(mode, kernel, pad, exact):
    """A reflect pad p before a k-tap window: the copies lie inside the unit's own clipped box iff 2p <= k - 1,
    which is p <= k // 2 for odd k but p <= k // 2 - 1 for even k. Circular pads read the opposite edge."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, kernel, padding=pad, padding_mode=mode),
                        nn.Conv2d(4, 4, 3)).eval()
    probe = cv.Probe(net, input_size=16)
    assert probe.receptive_field("c1") is not None
    if exact:
        assert_exact(probe, net, "c2")
        assert_exact(probe, net, "c3", every=3)
    else:
        assert probe.receptive_field("c2") is None and probe.receptive_field("c3") is None
        side, rf = 16, probe.receptive_field("c1")  # what a box would have claimed is wrong at some border unit
        assert any(b != (max(0, t), max(0, l), min(side, bb), min(side, r)) for (y, x), b in
                   supports(net, "1", side).items() for t, l, bb, r in [_grown(rf, kernel, pad).box(y, x)])


def _grown(rf, k, p):
    return cv.ReceptiveField(rf.size + (k - 1), 1, rf.offset - p)


class SpaceToDepth(nn.Module):
    """timm's SpaceToDepth (TResNet's stem), nn.PixelUnshuffle, and nn.PixelShuffle after them."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(64, 8, 3, padding=1)
        self.unshuffle = nn.PixelUnshuffle(2)
        self.c3 = nn.Conv2d(32, 8, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.c4 = nn.Conv2d(2, 4, 3, padding=1)

    def forward(self, x):
        x = self.c1(x)
        n, c, h, w = x.shape
        x = x.view(n, c, h // 4, 4, w // 4, 4).permute(0, 3, 5, 1, 2, 4).contiguous().view(n, c * 16, h // 4, w // 4)
        x = self.c3(self.unshuffle(self.c2(x)))
        return self.c4(self.shuffle(x))


def test_space_to_depth_has_exact_affine_fields():
    torch.manual_seed(0)
    net = SpaceToDepth().eval()
    probe = cv.Probe(net, input_size=32)
    c1 = probe.receptive_field("c1")
    assert probe.receptive_field("c2") == cv.ReceptiveField(3 + 3 + 2 * 4, 4, -1 - 4)  # block 4, then a 3x3 conv
    assert probe.receptive_field("c3") == cv.ReceptiveField(14 + 4 + 2 * 8, 8, -5 - 8)
    for name in ("c1", "c2", "c3"):
        assert_exact(probe, net, name)
    assert c1 == cv.ReceptiveField(3, 1, -1)
    rf = probe.receptive_field("c4")  # depth-to-space: like nearest upsampling, a box that holds every unit
    for (y, x), got in supports(net, "c4", 32, every=1).items():
        t, l, b, r = rf.box(y, x)
        assert max(t, 0) <= got[0] and max(l, 0) <= got[1] and got[2] <= min(b, 32) and got[3] <= min(r, 32)


class GlobalContext(nn.Module):
    """A global-context block (softmax over flattened positions, a weighted sum, added back) before c3,
    a squeeze-excitation gate (not counted) before c2, and self-attention (q @ k, softmax, @ v) before c4."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
        self.attn, self.fc = nn.Conv2d(4, 1, 1), nn.Conv2d(4, 4, 1)
        self.c3 = nn.Conv2d(4, 4, 3, padding=1)
        self.qkv = nn.Conv2d(4, 12, 1)
        self.c4 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = x1 = self.c1(x)
        x = self.c2(x * torch.sigmoid(x.mean((2, 3), keepdim=True)))
        b, c, h, w = x.shape
        a = F.softmax(self.attn(x).reshape(b, 1, h * w), dim=-1).unsqueeze(3)
        context = (x.reshape(b, c, h * w).unsqueeze(1) @ a).view(b, c, 1, 1)
        x = self.c3(x + self.fc(context))
        return x, self.c4(x1 + self.self_attention(x1))

    def self_attention(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, 4, h * w).unbind(1)  # (b, 4, hw) each
        attn = (q.transpose(-1, -2) @ k).softmax(-1)
        return (attn @ v.transpose(-1, -2)).transpose(-1, -2).reshape(b, c, h, w)


def test_blocks_that_mix_every_position_make_later_fields_global():
    torch.manual_seed(0)
    net = GlobalContext().eval()
    probe = cv.Probe(net, input_size=12)
    assert_exact(probe, net, "c2")  # the squeeze-excitation gate is not counted
    assert probe.receptive_field("fc").is_global  # the context itself
    assert_whole(probe, net, "c3")
    assert_whole(probe, net, "c4")


def test_a_field_larger_than_the_input_joined_at_another_stride_is_whole():
    """A gate like GhostNetV2's at 7x7: avg-pool, convs and nearest upsampling back give a different stride than
    the main path; every unit of the gate already sees the whole input, so their union is the whole input."""
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 4, 9, stride=2, padding=4), nn.Conv2d(4, 4, 9, padding=4)
            self.short = nn.Conv2d(4, 4, 9, padding=4)
            self.c3 = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            x = self.c2(self.c1(x))
            gate = F.interpolate(self.short(F.avg_pool2d(x, 2)), size=x.shape[-2:], mode="nearest")  # no sigmoid: it saturates in the twin
            return self.c3(x * gate)

    torch.manual_seed(0)
    net = Gate().eval()
    probe = cv.Probe(net, input_size=14)
    assert_whole(probe, net, "c3", every=1)


# ---------------------------------------------------------------- real networks (timm, random weights)

timm = pytest.importorskip("timm")


def _timm_probe(name, size):
    torch.manual_seed(0)
    return cv.Probe(timm.create_model(name, pretrained=False).eval(), input_size=size, device="cpu")


def _oracle_agrees(probe, names):
    measured = probe.measure_receptive_fields(names, max_side=512)
    for name in names:
        rf, got = probe.receptive_field(name), measured[name]
        assert got is not None and (rf.size_yx, rf.stride_yx, rf.offset_yx) == (got.size_yx, got.stride_yx, got.offset_yx), (name, rf, got)


def _unit_sees_all(probe, name):
    """One central unit's gradient support in the oracle's positive twin is the whole input."""
    out, _ = traced_output(probe.model, probe.layer(name).module_path, probe.input_size)
    box = unit_support(probe.model, probe.layer(name).module_path, probe.input_size, out.shape[-2] // 2, out.shape[-1] // 2)
    return box == (0, 0, probe.input_size, probe.input_size)


def test_tresnet_space_to_depth_stem():
    probe = _timm_probe("tresnet_m", 64)
    assert [l.name for l in probe.layers if l.rf is None] == []
    assert probe.receptive_field("body.conv1.conv") == cv.ReceptiveField(4 + 2 * 4, 4, -4)  # block 4, then 3x3
    _oracle_agrees(probe, ["body.conv1.conv", "body.layer1.0.conv2.conv"])


@pytest.mark.parametrize("name,size,block,first_global", [
    ("gcresnet33ts", 64, "stages.0.0.", "stages.0.0.attn.mlp_add.fc1"),
    ("botnet26t_256", 256, "stages.2.1.", "stages.2.1.conv3_1x1.conv"),
])
def test_attention_blocks_give_global_fields(name, size, block, first_global):
    """Global context (gcresnet33ts) and self-attention (botnet26t_256): every layer from the attention on is
    global, but the block's shortcut; the oracle agrees on a layer before it, and one unit after it sees all."""
    probe = _timm_probe(name, size)
    assert [l.name for l in probe.layers if l.rf is None] == []
    names = [l.name for l in probe.layers]
    after = [n for n in names[names.index(first_global):] if "shortcut" not in n]
    assert all(probe.receptive_field(n).is_global for n in after)
    assert not any(probe.receptive_field(n).is_global for n in names[: names.index(first_global)] if "attn" not in n)
    local = [n for n in names[: names.index(first_global)] if probe.receptive_field(n).size <= size // 2]
    _oracle_agrees(probe, local[-1:])
    assert _unit_sees_all(probe, next(n for n in after if not n.startswith(block)))


def test_ghostnetv2_gate_joins_an_upsampled_box_so_fields_after_it_are_none():
    """GhostNetV2's DFC attention multiplies the block by a gate computed at half resolution and upsampled
    (nearest): even and odd units then see different pixels, so no affine box is every unit's support. The
    traced covering box (75, stride 4) disagreed with the oracle (71, stride 8): now None, and a strict
    measurement declines it too. Layers before the first gate keep exact fields."""
    probe = _timm_probe("ghostnetv2_100", 224)
    names = [l.name for l in probe.layers]
    first = names.index("blocks.2.0.ghost2.primary_conv.0")
    assert all(probe.receptive_field(n) is not None for n in names[:first])
    assert probe.receptive_field("blocks.2.0.ghost2.cheap_operation.0") is None
    convs = [n for n in names[:first] if probe.layer(n).kind == "conv" and probe.receptive_field(n).size <= 60]
    _oracle_agrees(probe, convs[4::6][:2])
    assert probe.measure_receptive_fields(["blocks.2.0.ghost2.primary_conv.0"], max_side=448,
                                          strict=True)["blocks.2.0.ghost2.primary_conv.0"] is None


# ---------------------------------------------------------------- measuring what tracing cannot give

class Rolled(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3)

        self.se = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = self.c1(x).roll(1, 1)  # moves channels only, but the tracer cannot tell: the field is measured
        x = self.c2(x).transpose(2, 3).transpose(2, 3)
        return self.c3(x * torch.sigmoid(self.se(x.mean((2, 3), keepdim=True))))  # a gate: global, traced


def test_missing_fields_are_measured_in_the_background_and_recorded(photos):
    torch.manual_seed(0)
    net = Rolled().eval()
    probe = cv.Probe(net, input_size=16)
    assert probe.receptive_field("c2") is None and probe.receptive_field("c3") is None
    # a global pool of a map the tracer lost stays lost: that map may have dropped or repeated cells
    assert probe.receptive_field("se") is None
    with pytest.raises(cv.UnsupportedModelError, match="measure_missing_fields"):
        probe.field_or_error("c2")
    assert probe.measure_missing_fields(timeout=0) == {}  # no time: nothing measured, nothing recorded
    handle = probe.measure_fields_in_background(timeout=30)
    assert handle.wait(30) and handle.error is None and not probe.fields_measuring
    rf = probe.receptive_field("c2")
    assert rf == cv.ReceptiveField(5, 1, -2) and rf.measured and "measured" in repr(rf)
    assert probe.receptive_field("c3") == cv.ReceptiveField(7, 1, -2)
    assert_exact(probe, net, "c3")
    assert probe.field_or_error("c3").measured
    assert probe.measure_missing_fields() == {}  # recorded: not measured again
    assert cv.top_patches(probe, photos[:2], "c3", k=2, progress=False).patch(0, 0).shape == (7, 7, 3)


def test_a_measurement_never_records_a_wrong_box():
    """Circular padding: central units look like a plain 3x3 field, corner units read the opposite edge."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), nn.Conv2d(4, 4, 3)).eval()
    probe = cv.Probe(net, input_size=16)
    start = time.monotonic()
    assert probe.measure_missing_fields(timeout=20) == {"c1": None, "c2": None}
    assert time.monotonic() - start < 20
    assert probe.receptive_field("c1") is None
    with pytest.raises(cv.UnsupportedModelError, match="no box"):
        probe.field_or_error("c1")


@pytest.mark.parametrize("norm", [lambda: nn.GroupNorm(2, 8), lambda: nn.GroupNorm(1, 8),
                                  lambda: nn.InstanceNorm2d(8, affine=True), lambda: nn.LayerNorm([8, 16, 16])],
                         ids=["group", "group-of-one", "instance", "layer-over-space"])
def test_norm_statistics_are_not_counted_in_the_field_like_squeeze_excite_gates(norm):
    """GroupNorm, InstanceNorm and a LayerNorm over positions read every position for their statistics (one number
    per group and picture, like a gate): the oracle detaches them, so it agrees with the traced field (before it
    measured no field at all), and its normalised values are torch's own."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), norm(), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    probe = cv.Probe(net, input_size=16, device="cpu")
    assert [l.rf for l in probe.layers] == [cv.ReceptiveField(3, 1, -1), cv.ReceptiveField(5, 1, -2)]
    assert probe.measure_receptive_fields() == {"c1": cv.ReceptiveField(3, 1, -1), "c2": cv.ReceptiveField(5, 1, -2)}
    twin = positive_copy(net)
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    with support_mode():
        inside = twin[1](twin[0](x))
    assert torch.allclose(inside, twin[1](twin[0](x)))


def test_every_unit_of_a_whole_picture_field_has_the_whole_picture_as_its_box():
    """After global context a map's units all see the whole picture: box and centre do not move with the unit
    (they used to step by the picture's size, so a patch of unit (4, 4) was cut from outside the picture)."""
    rf = cv.ReceptiveField(64, 64, 0, is_global=True)
    assert {rf.box(y, x) for y in range(5) for x in range(5)} == {(0, 0, 64, 64)}
    assert rf.centre(4, 3) == rf.centre(0, 0) == (31.5, 31.5)


def test_a_one_by_one_map_flattened_is_what_fully_connected_layers_read():
    """Inception-v3 at 96 px ends in a 1x1 map that is squeezed to (N, C): no positions are left (it raised an
    IndexError while tracing)."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(4, 2))
    probe = cv.Probe(net, input_size=5, device="cpu")
    assert probe.receptive_field(probe.layer_names[-1]).is_global
    assert probe.receptive_field(probe.layer_names[1]) == cv.ReceptiveField(5, 1, 0)


class _MixedConv(nn.Module):
    """MixNet's pattern: the map split along channels, a 3x3 and a 7x7 depthwise conv, concatenated, gated, split
    again (split, chunk, a slice) into 1x1 convs, plus a residual add of a plain map."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.b = nn.Conv2d(4, 4, 7, padding=3, groups=4)
        self.pa = nn.Conv2d(4, 4, 1)
        self.pb = nn.Conv2d(4, 4, 1)
        self.after = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x1, x2 = torch.split(x, [4, 4], 1)
        y = torch.cat([self.a(x1), self.b(x2)], 1)
        y = F.silu(y * torch.sigmoid(y.mean((2, 3), keepdim=True))) + x  # a gate, a residual add
        y1, _ = y.chunk(2, 1)
        z = torch.cat([self.pa(y1), self.pb(y[:, 4:])], 1)
        return self.after(z.narrow(1, 0, 4))


def test_a_channel_slice_of_a_concatenation_has_its_own_branches_field_not_the_union():
    """MixNet: each slice keeps its own kernel's field (was the 7x7 branch's for all: 'pa' read 9 px, not 5)."""
    probe = cv.Probe(_MixedConv(), input_size=32, device="cpu")
    traced = {l.name: l.rf for l in probe.layers}
    assert traced["pa"] == cv.ReceptiveField(5, 1, -2) and traced["pb"] == cv.ReceptiveField(9, 1, -4)
    assert traced["after"] == cv.ReceptiveField(5, 1, -2)
    assert probe.measure_receptive_fields() == traced  # the oracle: gradient support of single units


@pytest.mark.parametrize("lose", [lambda x: x[:, :, [0, 1, 2]], lambda x: x[:, :, :, torch.tensor([0, 1])]],
                         ids=["list-rows", "tensor-columns"])
def test_a_global_pool_of_a_lost_map_is_no_whole_picture_field(lose):
    """An index that keeps three rows, then a global pool: the units read only those rows, so 'whole picture' would
    be a wrong box; the field is None (a review found this)."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.c2(F.adaptive_avg_pool2d(lose(F.relu(self.c1(x))), 1))

    probe = cv.Probe(Net(), input_size=16, device="cpu")
    assert probe.receptive_field("c2") is None


def test_a_measurement_cut_short_by_its_deadline_is_no_verdict(monkeypatch):
    """The deadline passing while the input is doubled used to be recorded as 'no box' for good (the widget then
    said the field was no box, and never measured it again); it is left for the next call."""
    import cnnviz_widgets.probe.receptive_field as rf_module

    torch.manual_seed(0)
    probe = cv.Probe(Rolled().eval(), input_size=8)
    clock = iter([0.0, 0.0] + [1e9] * 1000)  # the deadline, the first check, then time is up
    monkeypatch.setattr(rf_module.time, "monotonic", lambda: next(clock))
    assert probe.measure_missing_fields(timeout=5, layers=["c3"]) == {}
    monkeypatch.undo()
    assert probe.field_pending("c3")  # still to be measured
    assert probe.measure_missing_fields(timeout=60, layers=["c3"])["c3"] is not None
