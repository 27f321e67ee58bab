"""What a user writes without cnnviz-widgets, as the benchmarks' baselines: a torchvision reading loop
over a folder (decode_jpeg, antialiased uint8 resize, centre crop, DataLoader readers, pinned batches,
converted on the device) and a plain forward loop over pictures already in memory."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class TorchvisionFolder(Dataset):
    """``paths`` decoded by torchvision and resized to ``size`` as uint8, the way torchvision's own
    ImageNet presets do it on tensors (Resize(size, antialias=True) then CenterCrop(size))."""

    def __init__(self, paths: list[str], size: int, on_device: bool = False) -> None:
        self.paths, self.size, self.on_device = list(paths), size, on_device

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor | bytes:
        from torchvision.io import ImageReadMode, decode_jpeg, read_file
        from torchvision.transforms.v2 import functional as TF

        if self.on_device:  # nvjpeg: the readers only read the bytes (as bytes: tensors would each hold a descriptor)
            with open(self.paths[i], "rb") as f:
                return f.read()
        x = decode_jpeg(read_file(self.paths[i]), mode=ImageReadMode.RGB)
        return TF.center_crop(TF.resize(x, self.size, antialias=True), self.size)


def _listed(batch: list[bytes]) -> list[bytes]:
    return batch


def folder_loop(model: torch.nn.Module, paths: list[str], size: int, batch_size: int, workers: int,
                mean: torch.Tensor, std: torch.Tensor, device: torch.device, decode: str = "cpu",
                autocast: torch.dtype | None = None) -> int:
    """Every picture of ``paths`` through ``model`` the torchvision way; returns how many went through."""
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.transforms.v2 import functional as TF

    gpu = decode == "cuda"
    loader = DataLoader(TorchvisionFolder(paths, size, on_device=gpu), batch_size=batch_size, num_workers=workers,
                        pin_memory=device.type == "cuda", collate_fn=_listed if gpu else None)
    n = 0
    with torch.no_grad(), torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        for batch in loader:
            if gpu:
                data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in batch]
                pics = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
                batch = torch.stack([TF.center_crop(TF.resize(p, size, antialias=True), size) for p in pics])
            x = (batch.to(device, non_blocking=True).float().div_(255) - mean) / std
            model(x)
            n += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n


def tensor_loop(model: torch.nn.Module, pictures: torch.Tensor, batch_size: int, mean: torch.Tensor,
                std: torch.Tensor, device: torch.device) -> int:
    """A plain forward loop over in-memory uint8 pictures (N, 3, S, S) already at the input size."""
    n = 0
    with torch.no_grad():
        for i in range(0, len(pictures), batch_size):
            x = (pictures[i : i + batch_size].to(device, non_blocking=True).float().div_(255) - mean) / std
            model(x)
            n += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n
