"""Shared fixtures: the workers and their threads (two cores, as CI has), seeded models, real sample photos, the big-folder benchmark."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnviz_widgets as cv
from notebook_checks import clean_notebook  # noqa: F401 - tests import it from here

# Two workers run the suite (pytest-xdist, pyproject's addopts): a browser test waits on Chromium and a kernel
# while the other worker computes. Each worker's PyTorch gets one thread, so two workers fill the two cores that
# one process with two threads did (`-n 0` runs in one process, with two). So do the kernels, servers and scripts
# the tests start (THREADS, and OMP_NUM_THREADS which they inherit): with two threads each, two workers' kernels
# and Chromium oversubscribed the cores (the four heaviest notebooks in JupyterLab took 174 s in two workers, 137
# s with one thread per kernel, and 2.8 min of CPU instead of 4.2).
WORKERS = max(1, int(os.environ.get("CNNVIZ_TEST_WORKERS", "0")) or min(2, os.cpu_count() or 1))
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
torch.set_num_threads(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers (CNNVIZ_TEST_WORKERS to change it), fewer on fewer cores. More would not pay on
    a machine like CI's, and each browser worker holds a JupyterLab, a kernel and a Chromium in memory."""
    return WORKERS

# Tests live in folders that follow the package (tests/probe for cnnviz_widgets/probe, ...; tests/api for what
# crosses it: hostile and real input, properties, the import layers), plus two by what they run: tests/browser
# (Chromium) and tests/system (notebooks, kernels, reader processes, packaging, end to end). Tiers, from where a
# test lives (a test may also mark itself). The README's command runs them all (CI); while working, the fast tier:
#   python -m pytest -m "not slow and not browser and not system"
# slow: one file's tests take a minute or more on this 2-core machine (measured: `--durations` in CI's output).
TIER_DIRS = {"browser": pytest.mark.browser, "system": pytest.mark.system}
SLOW_FILES = {"test_zoo.py", "test_fields_zoo.py", "test_measured_fields.py", "test_real_cnn.py", "test_auto_rule.py",
              "test_jobs.py", "test_widgets.py", "test_save.py", "test_real_input.py", "test_properties.py",
              "test_precision.py", "test_pipeline.py", "test_receptive_field.py", "test_hostile_input.py",
              "test_class_map.py", "test_explorer_class_map.py", "test_uploads.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test takes its tier's marker from where it lives."""
    for item in items:
        path = Path(str(item.fspath))
        for folder, mark in TIER_DIRS.items():
            if folder in path.parts:
                item.add_marker(mark)
        if path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def vgg16() -> nn.Module:
    return cv.load_model("vgg16", weights=None, seed=0)


@pytest.fixture(scope="session")
def alexnet_paper() -> nn.Module:
    return cv.load_model("alexnet_paper", weights=None, seed=0)


@pytest.fixture(scope="session")
def vgg_probe(vgg16) -> cv.Probe:
    return cv.Probe(vgg16, device="cpu")


@pytest.fixture(scope="session")
def alex_probe(alexnet_paper) -> cv.Probe:
    return cv.Probe(alexnet_paper, device="cpu")


@pytest.fixture(scope="session")
def photos():
    return cv.sample_images()


class TinyNet(nn.Module):
    """A small plain chain (two conv blocks, two fc) for fast tests: c1 c2 p2 c3 p3 fc4 fc5."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


@pytest.fixture()
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet().eval()


REPO = Path(__file__).resolve().parent.parent


def load_script(relative: str):
    """A script of the repository (``benchmarks/x.py``, ``docs/x.py``) as a module, so tests run its own code; its
    folder goes on sys.path for what it imports from beside it."""
    path = REPO / relative
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bench():
    """benchmarks/bench_big_folder.py as a module: its folder maker, measurement and peak-memory sampler
    serve the scale tests, so the tests run the benchmark's own code (its baseline, user_loops.py, beside it)."""
    return load_script("benchmarks/bench_big_folder.py")


async def settle(w, timeout: float = 60.0) -> None:
    """Wait until the widget has no job in flight (the kernel's event loop keeps turning meanwhile)."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while w.busy or w._jobs:
        assert loop.time() < end, "a job never finished"
        await asyncio.sleep(0.01)


def assert_zero_counts_close(a, b) -> None:
    """Sparsity counts of one set computed two ways (batch sizes, memory layouts): PyTorch's CPU convolutions
    round differently between them, so a pre-activation within rounding of zero may fall on either side of
    the ReLU and a count may move by a unit or two (one in a million at most), never more."""
    assert list(a.zeros) == list(b.zeros)
    for name, zeros in b.zeros.items():
        assert abs(a.zeros[name] - zeros) <= max(2, 1e-6 * b.totals[name]), (name, a.zeros[name], zeros)
    assert a.totals == b.totals
