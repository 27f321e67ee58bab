"""Soak (issue 6, Python side): a DeconvExplorer through 200 image changes and 2,000 layer moves.

Memory (RSS, and on a GPU torch.cuda.memory_allocated), the hooks on the model and the
torch-function-mode stack must stay flat: a classroom
leaves a notebook open for an hour. Flatness is asserted with a stated margin, never speed.
"""
from __future__ import annotations

import gc

import psutil
import torch

import cnnviz_widgets as cv
from cnnviz_widgets.probe.hooks import hook_count


def test_explorer_soak_keeps_memory_and_hooks_flat(photos):
    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), input_size=96)
    w = cv.DeconvExplorer(probe, photos[:4])
    proc = psutil.Process()
    hooks = hook_count(probe.model)

    def churn(changes: int, moves_per_change: int) -> None:
        for i in range(changes):
            w.image_index = (w.image_index + 1) % 4
            for j in range(moves_per_change):
                w.layer = w.layer_names[(i + j) % len(w.layer_names)]
            assert w.error == ""

    churn(20, 10)  # warm-up: allocator pools, caches
    gc.collect()
    before = proc.memory_info().rss
    cuda = probe.device.type == "cuda"  # the probe takes the GPU when there is one
    cuda_before = torch.cuda.memory_allocated(probe.device) if cuda else 0
    churn(200, 10)  # 200 image changes, 2,000 layer moves
    gc.collect()
    growth_mb = (proc.memory_info().rss - before) / 2**20
    if cuda:
        cuda_growth = (torch.cuda.memory_allocated(probe.device) - cuda_before) / 2**20
        print(f"\nsoak: CUDA memory allocated grew {cuda_growth:+.1f} MiB")
        assert cuda_growth < 1, f"GPU memory grew by {cuda_growth:.1f} MiB"
    print(f"\nsoak: RSS grew {growth_mb:+.1f} MiB over 200 image changes and 2,000 layer moves")
    assert growth_mb < 30, f"memory grew by {growth_mb:.1f} MiB"
    assert hook_count(probe.model) == hooks and torch._C._len_torch_function_stack() == 0
    assert len(w.recs) == len(w.layer_names)
