"""Streaming over many pictures: memory stays flat, Ctrl-C stops cleanly and a rerun gives the same result."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnviz_widgets as cv
from conftest import assert_zero_counts_close
from cnnviz_widgets.probe.hooks import hook_count


class Generated:
    """n pictures made on demand (never held together), like a huge folder would be read."""

    def __init__(self, n: int, size: int = 80) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        rng = np.random.default_rng(i)
        return rng.integers(0, 256, (self.size, self.size + 16, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def probe():
    return cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), input_size=96)


def test_peak_memory_is_flat_from_500_to_2000_pictures(probe, bench):
    def run(n):
        return cv.mine(probe, Generated(n), top_layers=["c2", "c5"], k=9, batch_size=50, progress=False)

    run(100)  # warm-up: allocator pools, lazy imports
    (peak_500, _), small = bench.peak_memory(lambda: run(500), every=0.005)  # MiB of this process
    (peak_2000, _), big = bench.peak_memory(lambda: run(2000), every=0.005)
    growth_mb = peak_2000 - peak_500
    print(f"\npeak RSS: {peak_500:.0f} MiB at 500 pictures, {peak_2000:.0f} MiB at 2000 (+{growth_mb:.1f} MiB)")
    assert growth_mb < 40, f"peak memory grew by {growth_mb:.1f} MiB from 500 to 2000 pictures"
    assert big.sparsity.n_images == 2000 and small.sparsity.n_images == 500
    assert big.top["c5"].values.shape == (256, 9)


def test_interrupt_stops_cleanly_and_a_rerun_is_identical(probe):
    pictures = Generated(120)
    whole = cv.mine(probe, pictures, top_layers=["c3"], k=5, batch_size=20, progress=False)
    before = hook_count(probe.model), torch._C._len_torch_function_stack()

    class Interrupting(Generated):
        def __getitem__(self, i):
            if i == 70:
                raise KeyboardInterrupt
            return super().__getitem__(i)

    with pytest.raises(KeyboardInterrupt):
        cv.mine(probe, Interrupting(120), top_layers=["c3"], k=5, batch_size=20, progress=False)
    assert (hook_count(probe.model), torch._C._len_torch_function_stack()) == before
    again = cv.mine(probe, pictures, top_layers=["c3"], k=5, batch_size=20, progress=False)
    assert torch.equal(again.top["c3"].values, whole.top["c3"].values)
    assert torch.equal(again.top["c3"].image_index, whole.top["c3"].image_index)
    assert again.sparsity.zeros == whole.sparsity.zeros


def test_folder_streams_through_worker_processes(tmp_path, probe):
    from PIL import Image

    for i in range(70):
        Image.fromarray(Generated(1)[0] if i == 0 else Generated(i + 1)[i]).save(tmp_path / f"{i:03d}.jpg")
    folder = cv.load_images(tmp_path)
    from cnnviz_widgets.kernels.stream import default_workers

    assert default_workers(folder) >= 1  # a folder this size is read by DataLoader workers
    with_workers = cv.sparsity(probe, folder, progress=False)
    in_process = cv.sparsity(probe, folder, progress=False, num_workers=0)
    assert with_workers.zeros == in_process.zeros and with_workers.n_images == 70


def test_batches_are_capped_by_the_memory_they_need():
    from cnnviz_widgets.kernels.stream import effective_batch, per_image_bytes

    vgg = cv.Probe(cv.load_model("vgg16", weights=None))
    every = [l for l in vgg.layers if l.kind != "fc"]
    held = sum(4 * l.shape[0] * l.shape[1] * l.shape[2] for l in every)
    assert 60.0e6 < held < 60.5e6  # 60.3 MB of float32 activations per 224 px image
    assert per_image_bytes(vgg, every) == held + 2 * 4 * 64 * 224 * 224  # plus the two largest maps in flight
    assert effective_batch(32, per_image_bytes(vgg, every), 128 * 2**20) == 1
    deep = per_image_bytes(vgg, [vgg.layer("c5_3")])
    assert effective_batch(32, deep, 128 * 2**20) == 5  # 26 MB each
    assert per_image_bytes(vgg, [vgg.layer("c5_3")], keep_graph=True) > deep
    assert effective_batch(32, deep, None) == 32 and effective_batch(32, deep, 1) == 1


def test_the_batch_budget_follows_the_device(monkeypatch):
    """'auto' keeps CPU batches small (Binder's 2 GB) and lets a GPU take a quarter of its free memory, so
    mining VGG16's 18 layers runs at the asked batch size there instead of one picture at a time."""
    from cnnviz_widgets.kernels.stream import CPU_BATCH_BYTES, batch_budget, effective_batch, per_image_bytes

    assert batch_budget(torch.device("cpu")) == CPU_BATCH_BYTES == 128 * 2**20
    asked = []
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: asked.append(device) or (40 * 2**30, 80 * 2**30))
    gpu = torch.device("cuda", 1)
    assert batch_budget(gpu, "auto") == 10 * 2**30 and asked == [gpu]  # the probe's own GPU is asked
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100 * 2**20, 80 * 2**30))
    assert batch_budget(gpu) == CPU_BATCH_BYTES  # a nearly full GPU still gets the CPU's budget, not zero
    assert batch_budget(gpu, None) is None and batch_budget(gpu, 5000) == 5000  # given values win everywhere
    assert batch_budget(torch.device("cpu"), np.int64(5000)) == 5000  # a byte count computed with numpy

    vgg = cv.Probe(cv.load_model("vgg16", weights=None))
    every = per_image_bytes(vgg, [l for l in vgg.layers if l.kind != "fc"])
    assert effective_batch(32, every, batch_budget(torch.device("cpu"))) == 1
    assert effective_batch(32, every, 10 * 2**30) == 32


@pytest.mark.parametrize("bad", ["big", 0, -1, 1.5, True])
def test_a_bad_batch_budget_is_named(probe, bad):
    with pytest.raises(cv.CnnvizError, match=r"max_batch_bytes must be 'auto', None \(no cap\) or a positive"):
        cv.sparsity(probe, Generated(3), progress=False, max_batch_bytes=bad)


def test_the_budget_changes_batches_not_results(probe):
    tight = cv.mine(probe, Generated(12), top_layers=["c2"], k=3, batch_size=6, progress=False, max_batch_bytes=1)
    free = cv.mine(probe, Generated(12), top_layers=["c2"], k=3, batch_size=6, progress=False, max_batch_bytes=None)
    assert_zero_counts_close(tight.sparsity, free.sparsity)  # batches of 1 here, 6 there
    assert torch.equal(tight.top["c2"].image_index, free.top["c2"].image_index)
    assert torch.allclose(tight.top["c2"].values, free.top["c2"].values, rtol=1e-5)
