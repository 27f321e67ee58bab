"""Peak resident memory of a piece of work, exactly, on Linux: the kernel's own high-water mark (VmHWM), reset
before the work by writing 5 to /proc/self/clear_refs.

Why resident memory and not tracemalloc: tracemalloc sees Python's allocator only, while tensors come from
PyTorch's CPU allocator (malloc). Tensors above glibc's mmap threshold (128 KB at first; it grows up to 32 MB
as big blocks are freed) are mapped and unmapped with the system, so resident memory follows them; VmHWM is the
true peak (no sampling can miss it). The threshold is pinned at 128 KB here (mallopt), so it does not grow and
keep freed snapshots in the heap. The figure includes everything else the process touches meanwhile, so it
bounds the tensors' peak from above.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def pin_mmap_threshold(size: int = 128 * 1024) -> bool:
    """Blocks of ``size`` bytes or more are mapped from the system and given back when freed (glibc's mallopt
    M_MMAP_THRESHOLD; setting it stops the threshold from growing). False where there is no glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-3, size))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def available() -> bool:
    """Whether this system can reset and read the peak (Linux with /proc and glibc)."""
    try:
        if not pin_mmap_threshold():
            return False
        Path("/proc/self/clear_refs").write_text("5")
        _status("VmHWM")
        return True
    except OSError:
        return False


def peak_above_start(work: Callable[[], Any]) -> tuple[int, Any]:
    """(bytes, result): how far resident memory rose above where it stood when ``work`` started, at its peak."""
    import gc

    gc.collect()
    start = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS now
    result = work()
    return _status("VmHWM") - start, result
