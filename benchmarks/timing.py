"""Wall-clock timing for the benchmarks: the device drained before and after, medians, alternation."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def once(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes, the GPU's queue drained before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    return statistics.median(once(fn, device) for _ in range(repeats))


def paired(a: Callable[[], object], b: Callable[[], object], repeats: int, device: torch.device,
           warm: bool = True) -> tuple[float, float]:
    """Median seconds of ``a`` and ``b`` run in alternation, so a busy machine slows both alike."""
    if warm:
        a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(once(a, device))
        tb.append(once(b, device))
    return statistics.median(ta), statistics.median(tb)
