"""An explicit, layer-by-layer deconvnet for plain chains, written independently of the kernel.

Forward once recording max-pool indices; go back with relu, max_unpool2d at those indices,
conv_transpose2d with the same filters, and W^T for fully connected layers (Zeiler & Fergus).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def chain_ops(model: nn.Module) -> list:
    """The ops of a VGG/AlexNet-style model in order: features, avgpool, flatten, classifier."""
    ops = list(model.features)
    if hasattr(model, "avgpool"):
        ops.append(model.avgpool)
    ops.append("flatten")
    ops.extend(m for m in model.classifier if not isinstance(m, nn.Flatten))
    return ops


def forward_record(ops: list, x: torch.Tensor):
    """Activations after every op and what each op needs to be reversed."""
    records, acts, h = [], [], x
    for op in ops:
        if isinstance(op, nn.Conv2d):
            records.append(("conv", op, h.shape))
            h = op(h)
        elif isinstance(op, nn.ReLU):
            records.append(("relu",))
            h = F.relu(h)
        elif isinstance(op, nn.MaxPool2d):
            out, idx = F.max_pool2d(h, op.kernel_size, op.stride, op.padding, return_indices=True)
            records.append(("pool", op, idx, h.shape))
            h = out
        elif isinstance(op, nn.AdaptiveAvgPool2d):
            out = op(h)
            assert out.shape == h.shape, "the explicit reverse expects the identity avgpool of 224 px inputs"
            records.append(("identity",))
            h = out
        elif op == "flatten":
            records.append(("flatten", h.shape))
            h = h.flatten(1)
        elif isinstance(op, nn.Dropout):
            records.append(("identity",))
        elif isinstance(op, nn.Linear):
            records.append(("linear", op))
            h = op(h)
        else:
            raise TypeError(op)
        acts.append(h)
    return records, acts


def reverse(records: list, start: int, signal: torch.Tensor) -> torch.Tensor:
    """Take ``signal`` (shaped like the activation after op ``start``) back to pixel space."""
    for rec in reversed(records[: start + 1]):
        kind = rec[0]
        if kind == "relu":
            signal = F.relu(signal)
        elif kind == "conv":
            conv, in_shape = rec[1], rec[2]
            s, p, d = conv.stride[0], conv.padding[0], conv.dilation[0]
            k = conv.kernel_size[0]
            natural = (signal.shape[-1] - 1) * s - 2 * p + d * (k - 1) + 1
            signal = F.conv_transpose2d(signal, conv.weight, None, s, p, in_shape[-1] - natural, 1, d)
        elif kind == "pool":
            pool, idx, in_shape = rec[1], rec[2], rec[3]
            signal = F.max_unpool2d(signal, idx, pool.kernel_size, pool.stride, pool.padding, output_size=in_shape[-2:])
        elif kind == "flatten":
            signal = signal.reshape(rec[1])
        elif kind == "linear":
            signal = signal @ rec[1].weight
    return signal


def layer_positions(ops: list, names: tuple[str, ...]) -> dict[str, int]:
    """Index of the op whose output is each named layer's activation (the ReLU after conv/fc)."""
    positions, k = {}, 0
    weighted = [i for i, op in enumerate(ops) if isinstance(op, (nn.Conv2d, nn.MaxPool2d, nn.Linear))]
    for i in weighted:
        nxt = i + 1
        take = nxt if nxt < len(ops) and isinstance(ops[nxt], nn.ReLU) and not isinstance(ops[i], nn.MaxPool2d) else i
        positions[names[k]] = take
        k += 1
    return positions
