"""Data-set kernels against brute force: sparsity, streaming top-k, patches, representation space."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnviz_widgets as cv
from cnnviz_widgets.kernels.patches import crop_padded
from cnnviz_widgets.kernels.stream import stream_activations
from cnnviz_widgets.kernels.topk import TopPatches, batch_topk


@pytest.fixture(scope="module")
def alex_small():
    return cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=1), input_size=128)


@pytest.fixture(scope="module")
def pictures(photos):
    return photos  # nine real photos


def all_activations(probe, pictures, names, batch_size=32):
    """Every activation, stored, from the same batched pass the kernels make (oneDNN rounds per batch size)."""
    parts = {n: [] for n in names}
    for _, acts in stream_activations(probe, pictures, probe.select(names), batch_size, progress=False):
        for n in names:
            parts[n].append(acts[n])
    return {n: torch.cat(v) for n, v in parts.items()}


def test_sparsity_equals_brute_force(alex_small, pictures):
    names = [l.name for l in alex_small.layers]
    acts = all_activations(alex_small, pictures, names, batch_size=4)
    result = cv.sparsity(alex_small, pictures, batch_size=4, include_fc=True, progress=False)
    assert list(result) == names
    for name in names:
        brute = float((acts[name] == 0).double().mean())
        assert abs(result[name] - brute) < 1e-12, name
    default = cv.sparsity(alex_small, pictures, progress=False)
    assert list(default) == [l.name for l in alex_small.layers if l.kind != "fc"]
    assert 0 < default["c3"] < 1 and result.n_images == len(pictures)
    assert default["p1"] < default["c1"]  # max-pooling lowers sparsity (paper, section 5)


def brute_topk(act: torch.Tensor, k: int):
    """Sort every unit of every filter by (value desc, image, y, x)."""
    n, c, h, w = act.shape
    flat = act.permute(1, 0, 2, 3).reshape(c, -1)
    order = [sorted(range(flat.shape[1]), key=lambda j: (-float(flat[ch, j]), j))[:k] for ch in range(c)]
    idx = torch.tensor(order)
    return flat.gather(1, idx), idx // (h * w), (idx % (h * w)) // w, idx % w


def test_top_patches_equal_brute_force_sort(alex_small, pictures):
    k = 7
    act = all_activations(alex_small, pictures, ["c4"], batch_size=2)["c4"]
    top = cv.top_patches(alex_small, pictures, "c4", k=k, batch_size=2, progress=False)
    values, img, y, x = brute_topk(act, k)
    assert torch.equal(top.values, values)
    assert torch.equal(top.image_index, img)
    assert torch.equal(top.yx[..., 0], y) and torch.equal(top.yx[..., 1], x)
    assert (top.values[:, :-1] >= top.values[:, 1:]).all()


def test_ties_break_by_position_deterministically():
    flat = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, 0.0], [0.0] * 6, [3.0, 2.0, 2.0, 2.0, 2.0, 1.0]])
    vals, idx = batch_topk(flat, 3)
    assert idx.tolist() == [[1, 3, 0], [0, 1, 2], [0, 1, 2]]
    assert vals.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [3.0, 2.0, 2.0]]


@pytest.mark.parametrize("shape", [(40, 72, 80), (40, 12, 9), (40, 31, 3)])
@pytest.mark.parametrize("seed", range(6))
def test_two_stage_map_topk_equals_one_stage(seed, shape):
    """Both map algorithms (the CPU's rows-then-ties one, the GPU's sync-free keys) give batch_topk's result."""
    from cnnviz_widgets.kernels.topk import map_topk_keys, map_topk_rows

    g = torch.Generator().manual_seed(seed)
    maps = torch.randint(0, [3, 50, 4000][seed % 3], shape, generator=g).float()  # many ties
    maps[:5] = 0  # dead filters: everything ties
    maps[5:8, 2:6] = maps.max() + 1  # a plateau of maxima spanning rows
    maps[8:10] = -maps[8:10] - 0.5  # negative values (a layer before its rectifier), and -0.0 next to 0.0
    maps[10, 0, :2] = torch.tensor([-0.0, 0.0])
    maps[11] = torch.where(maps[11] > 1, float("-inf"), maps[11])
    for k in (1, 9, 30, shape[1] * shape[2]):
        want = batch_topk(maps.reshape(len(maps), -1), k)
        for algorithm in (map_topk_rows, map_topk_keys):
            v, i = algorithm(maps, k)
            assert torch.equal(v, want[0]) and torch.equal(i, want[1]), (algorithm.__name__, k)


def test_interior_patches_are_receptive_field_crops_and_border_ones_padded(alex_small, pictures):
    top = cv.top_patches(alex_small, pictures, "c2", k=20, progress=False)
    rf = alex_small.receptive_field("c2")
    seen = alex_small.to_image(alex_small.preprocess(pictures))
    fill = (alex_small.mean.flatten().numpy() * 255).round().astype(np.uint8)
    checked_inside = checked_border = 0
    for c in range(0, top.channels, 16):
        for i in range(top.k):
            patch = top.patch(c, i)
            assert patch.shape == (rf.size, rf.size, 3)
            (yy, xx), im = top.yx[c, i].tolist(), int(top.image_index[c, i])
            t, l, b, r = rf.box(yy, xx)
            if t >= 0 and l >= 0 and b <= alex_small.input_size and r <= alex_small.input_size:
                assert np.array_equal(patch, seen[im, t:b, l:r])
                checked_inside += 1
            else:
                # padded, not shifted: the part inside the image sits where the box says
                tt, ll = max(t, 0), max(l, 0)
                bb, rr = min(b, alex_small.input_size), min(r, alex_small.input_size)
                assert np.array_equal(patch[tt - t : bb - t, ll - l : rr - l], seen[im, tt:bb, ll:rr])
                if t < 0:
                    assert (patch[: -t] == fill).all()
                if l < 0:
                    assert (patch[:, : -l] == fill).all()
                checked_border += 1
    assert checked_inside and checked_border


def test_crop_padded_is_never_shifted():
    img = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    out = crop_padded(img, (-2, 3, 2, 7), np.array([9, 9, 9], np.uint8))
    assert out.shape == (4, 4, 3)
    assert (out[:2] == 9).all() and (out[:, 2:] == 9).all()
    assert np.array_equal(out[2:, :2], img[0:2, 3:5])


def test_reconstructions_are_the_units_deconvnet_cropped(alex_small, pictures):
    top = cv.top_patches(alex_small, pictures, "c3", k=3, progress=False)
    recs = top.reconstructions(5)
    rf = alex_small.receptive_field("c3")
    assert recs.shape == (3, 3, rf.size, rf.size)
    for i in range(3):
        img, (y, x) = int(top.image_index[5, i]), top.yx[5, i].tolist()
        full = alex_small.deconvnet(alex_small.preprocess(pictures[img][1]), layers="c3", unit=(5, y, x))["c3"][0]
        t, l, b, r = rf.square_box(y, x)
        outside = full.clone()
        outside[:, max(t, 0):b, max(l, 0):r] = 0
        assert outside.abs().max() == 0  # the reconstruction lives inside the field
        assert torch.allclose(recs[i][:, max(t, 0) - t : b - t, max(l, 0) - l : r - l], full[:, max(t, 0):b, max(l, 0):r], atol=1e-6)
    assert torch.allclose(top.reconstruction(5, 1), recs[1], rtol=1e-5, atol=1e-9)  # batch of 1 vs 3: last bits differ


def test_reconstructions_take_the_rule(alex_small, pictures):
    top = cv.top_patches(alex_small, pictures, "c4", k=2, progress=False)
    rf = alex_small.receptive_field("c4")
    for rule in ("guided", "gradient"):
        recs = top.reconstructions(7, rule=rule)
        for i in range(2):
            img, (y, x) = int(top.image_index[7, i]), top.yx[7, i].tolist()
            full = alex_small.reconstruct(alex_small.preprocess(pictures[img][1]), layers="c4", unit=(7, y, x), rule=rule)["c4"][0]
            t, l, b, r = rf.square_box(y, x)
            b, r = min(b, full.shape[-2]), min(r, full.shape[-1])  # the part of the field inside the picture
            assert torch.allclose(recs[i][:, max(t, 0) - t : b - t, max(l, 0) - l : r - l], full[:, max(t, 0):b, max(l, 0):r],
                                  atol=1e-6), rule
        assert torch.allclose(top.reconstruction(7, 1, rule=rule), recs[1], rtol=1e-5, atol=1e-9)
        assert not torch.allclose(recs, top.reconstructions(7), atol=1e-6)  # not the deconvnet's


def test_sharded_then_merged_equals_one_pass(alex_small, pictures):
    whole_s = cv.sparsity(alex_small, pictures, progress=False)
    whole_t = cv.top_patches(alex_small, pictures, "c5", k=5, progress=False)
    n = len(pictures)
    shards = [list(range(r, n, 3)) for r in range(3)]  # strided, as torch.distributed ranks would take them
    parts_s = [cv.sparsity(alex_small, pictures, indices=s, progress=False) for s in shards]
    parts_t = [cv.top_patches(alex_small, pictures, "c5", k=5, indices=s, progress=False) for s in shards]
    merged_s = parts_s[0].merge(parts_s[1]).merge(parts_s[2])
    assert merged_s.zeros == whole_s.zeros and merged_s.totals == whole_s.totals
    assert dict(merged_s) == dict(whole_s) and merged_s.n_images == n
    for merged in (parts_t[0].merge(parts_t[1]).merge(parts_t[2]), parts_t[2].merge(parts_t[0].merge(parts_t[1]))):
        # shards run in other batches than the one pass, and oneDNN's conv results depend on the batch in
        # the last bits on some CPUs (seen on AMD EPYC): equal to float32 rounding, same units
        assert torch.allclose(merged.values, whole_t.values, rtol=1e-5, atol=1e-7)
        assert torch.equal(merged.image_index, whole_t.image_index) and torch.equal(merged.yx, whole_t.yx)
    assert np.array_equal(merged.patch(3, 0), whole_t.patch(3, 0))


def test_fewer_units_than_k(tiny):
    """k above the units a filter has is capped, with a warning; a picture that cannot be read leaves
    its places empty (-inf, image -1) rather than shrinking k again."""
    probe = cv.Probe(tiny, input_size=32)
    with pytest.warns(UserWarning, match=r"k=3 is more than the 1 units one filter of 'fc4' has over 1 picture"):
        top = cv.top_patches(probe, [np.zeros((32, 32, 3), np.uint8)], "fc4", k=3, progress=False)
    assert top.k == 1 and (top.image_index[:, 0] == 0).all()
    with pytest.raises(cv.IndexOutOfRangeError, match="rank 1"):
        top.patch(0, 1)


@pytest.fixture(scope="module")
def space(alex_small, pictures):
    return cv.representation_space(alex_small, pictures, "c2", n_patches=600, grid=12, seed=3, progress=False)


def test_representation_space_features_and_grid(space, alex_small, pictures):
    acts = all_activations(alex_small, pictures, ["c2"])["c2"]
    units = space.units
    assert units.shape == (600, 3) and len(set(map(tuple, units.tolist()))) == 600
    brute = acts[units[:, 0], :, units[:, 1], units[:, 2]]
    assert torch.allclose(space.features, brute, atol=1e-6)
    pts = space.xy_unit
    assert pts.min() == 0 and pts.max() == 1
    g = space.grid
    for i in range(g):
        for j in range(g):
            centre = np.array([(j + 0.5) / g, (i + 0.5) / g])
            d = ((pts - centre) ** 2).sum(1)
            assert d[space.grid_index[i, j]] == d.min()


def test_zoom_relays_the_region(space):
    z = space.zoom(0.25, 0.5, 0.75, 1.0)
    assert z.grid == space.grid and z.region == (0.25, 0.5, 0.75, 1.0)
    pts, g = space.xy_unit, z.grid
    for i in (0, g // 2, g - 1):
        for j in (0, g - 1):
            centre = np.array([0.25 + (j + 0.5) / g * 0.5, 0.5 + (i + 0.5) / g * 0.5])
            d = ((pts - centre) ** 2).sum(1)
            assert d[z.grid_index[i, j]] == d.min()
    assert len(np.unique(z.grid_index)) > 1
    with pytest.raises(cv.CnnvizError, match="zoom needs"):
        space.zoom(0.5, 0.5, 0.4, 0.9)


def test_top_filters_equal_brute_force_sort(space):
    for i in (0, 17, 599):
        f = space.features[i]
        brute = sorted(range(len(f)), key=lambda c: (-float(f[c]), c))[:6]
        assert space.top_filters(i, k=6) == brute
    with pytest.raises(cv.CnnvizError, match="unit 600 is out of range"):
        space.top_filters(600)


def test_patches_of_the_space(space, alex_small):
    rf = alex_small.receptive_field("c2")
    assert space.patch(0).shape == (rf.size, rf.size, 3)
    mosaic = space.mosaic(cell=8)
    assert mosaic.shape == (12 * 8, 12 * 8, 3)


def test_embedding_is_deterministic_and_as_trustworthy_as_sklearn(space, alex_small, pictures):
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE, trustworthiness

    again = cv.representation_space(alex_small, pictures, "c2", n_patches=600, grid=12, seed=3, progress=False)
    assert np.array_equal(again.xy, space.xy) and np.array_equal(again.grid_index, space.grid_index)
    z = PCA(50, random_state=0).fit_transform(space.features.numpy())
    ours = trustworthiness(z, space.xy, n_neighbors=10)
    theirs = trustworthiness(z, TSNE(2, random_state=0, init="pca").fit_transform(z), n_neighbors=10)
    assert ours >= theirs - 0.03, (ours, theirs)


def test_tiny_samples_still_give_a_space(alex_small, pictures):
    rs = cv.representation_space(alex_small, pictures[:1], "p5", n_patches=5, grid=3, progress=False)
    assert rs.units.shape == (5, 3) and rs.grid_index.shape == (3, 3)
    every = cv.representation_space(alex_small, pictures, "c4", n_patches=10_000, grid=4, progress=False)
    assert len(every.units) == len(pictures) * 6 * 6  # capped at all the units there are


@pytest.mark.parametrize("call,match", [
    (lambda p, im: cv.sparsity(p, [], progress=False), "no images given"),
    (lambda p, im: cv.top_patches(p, im, "c2", k=0, progress=False), "k must be a positive"),
    (lambda p, im: cv.top_patches(p, im, "c9", progress=False), "No layer 'c9'.*Valid names: c1"),
    (lambda p, im: cv.representation_space(p, im, "c2", n_patches=0, progress=False), "n_patches must be a positive"),
    (lambda p, im: cv.representation_space(p, im, "c2", grid=0, progress=False), "grid must be a positive"),
    (lambda p, im: cv.sparsity(p, im, batch_size=0, progress=False), "batch_size must be a positive"),
    (lambda p, im: cv.sparsity(p, im, indices=[99], progress=False), "picture 99 in indices is out of range: the set has 2 pictures"),
    (lambda p, im: cv.sparsity(p, "/no/such/folder", progress=False), "does not exist"),
])
def test_bad_input_gets_a_clear_message(alex_small, pictures, call, match):
    with pytest.raises(cv.CnnvizError, match=match):
        call(alex_small, pictures[:2])


def test_merge_refuses_other_layers(alex_small, pictures):
    a = cv.top_patches(alex_small, pictures[:2], "c4", k=2, progress=False)
    b = cv.top_patches(alex_small, pictures[:2], "c5", k=2, progress=False)
    with pytest.raises(cv.CnnvizError, match="Cannot merge"):
        a.merge(b)
    hand = TopPatches("c4", a.values, a.image_index, a.yx, a.grid_hw)
    with pytest.raises(cv.CnnvizError, match="no pictures attached"):
        hand.patch(0, 0)
    with pytest.raises(cv.CnnvizError, match="Cannot merge sparsity"):
        cv.sparsity(alex_small, pictures[:1], layers="c1", progress=False).merge(
            cv.sparsity(alex_small, pictures[:1], layers="c2", progress=False))


def test_progress_bar_is_shown_and_can_be_silenced(alex_small, pictures, capsys):
    cv.sparsity(alex_small, pictures[:2], progress=True)
    assert "sparsity" in capsys.readouterr().err
    cv.sparsity(alex_small, pictures[:2], progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("shuffled", [False, True])
def test_the_whole_batch_top_k_equals_the_per_map_one(shuffled, monkeypatch):
    """batch_filter_topk (k rows per filter over the whole batch) gives the per-map path's result, also when a
    shard's pictures arrive out of order and with ties everywhere."""
    from cnnviz_widgets.kernels.topk import TopKMiner

    g = torch.Generator().manual_seed(int(shuffled))
    for trial, (h, w, top) in enumerate([(3, 4, 2), (13, 13, 5), (30, 31, 1000), (1, 1, 3)]):
        acts = [torch.randint(0, top, (5, 7, h, w), generator=g).float() for _ in range(3)]
        acts[0][:, :2] = 0  # dead filters
        acts[1][:, 3] = -acts[1][:, 3]  # negative values
        order = torch.randperm(15, generator=g) if shuffled else torch.arange(15)
        for k in (1, 9, 40):
            miners = [TopKMiner("x", 7, k, (h, w), torch.device("cpu")) for _ in range(2)]
            miners[1].by_rows = True
            for b, act in enumerate(acts):
                for m in miners:
                    m.add(act, order[5 * b : 5 * b + 5])
            assert torch.equal(miners[0].values, miners[1].values) and torch.equal(miners[0].flat, miners[1].flat), (trial, k)
