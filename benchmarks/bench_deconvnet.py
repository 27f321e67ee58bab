"""All-layer deconvnet of VGG16 (224x224, batch 1): cnnviz-widgets vs a Captum loop vs the FLOP floor;
the guided and gradient strips against the deconvnet strip, and guided against a Captum GuidedBackprop loop.

(a) the loop a Captum user writes: one ``captum.attr.Deconvolution`` call per layer, on a wrapper
    whose output is the layer's activations weighted by themselves (so the seed is the layer's own
    activations, as in the paper), each call running a full forward pass;
(b) the floor: one plain forward plus one plain autograd backward to the input per layer, with no
    recorder, no hooks and the ordinary ReLU backward (which costs the same as the deconvnet's).
    Its expected cost in forward passes is also printed from the layers' multiply-adds.

The guided rule keeps each rectifier's forward sign for its backward; its strip should cost at most
1.05x the deconvnet's (timed in alternation, median of --repeats pairs).

With --variants it also times the GPU options: all layers' backward passes as one batch
(``batched=True``), precision="tf32" and autocast bf16/fp16, each with its largest relative error against
the default (exact float32), and on CUDA compares every layer with the same deconvnet on the CPU
(relative error and cosine similarity, default precision and TF32). Everything here runs with TF32 off
unless a variant asks for it (the baselines too: one precision for every comparison).

Run: python benchmarks/bench_deconvnet.py [--threads 2] [--repeats 3] [--device cpu|cuda] [--variants]
"""
from __future__ import annotations

import argparse
import copy
import warnings

import torch
from torch import nn

import cnnviz_widgets as cv
from timing import paired, timed


def plain_ops(model: nn.Module) -> list[nn.Module]:
    """VGG16 as a flat op list (features, avgpool, flatten, classifier) with out-of-place ReLUs."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return list(twin.features) + [twin.avgpool, nn.Flatten()] + list(twin.classifier)


def layer_op_index(ops: list[nn.Module]) -> list[int]:
    """Index of the op whose output is each paper layer (the ReLU after a conv/fc, or the pool)."""
    out = []
    for i, op in enumerate(ops):
        if isinstance(op, (nn.Conv2d, nn.Linear)):
            out.append(i + 1 if i + 1 < len(ops) and isinstance(ops[i + 1], nn.ReLU) else i)
        elif isinstance(op, nn.MaxPool2d):
            out.append(i)
    return out


def floor_pass(ops, idx, x):
    """One forward, then one backward per layer from its activation to the input."""
    xi = x.detach().clone().requires_grad_(True)
    acts, h = [], xi
    for op in ops:
        h = op(h)
        acts.append(h)
    out = []
    for j, i in enumerate(idx):
        (g,) = torch.autograd.grad(acts[i], xi, grad_outputs=acts[i].detach(), retain_graph=j + 1 < len(idx))
        out.append(g)
    return out


class SeededLayer(nn.Module):
    """Wrapper a Captum user writes: output = sum(activation * activation.detach()) of one layer."""

    def __init__(self, model: nn.Module, module: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._act = None
        module.register_forward_hook(lambda m, i, o: setattr(self, "_act", o))

    def forward(self, x):
        self.model(x)
        a = self._act
        return (a * a.detach()).flatten(1).sum(1, keepdim=True)


def captum_loop(wrappers, x, method: str = "Deconvolution"):
    import captum.attr

    attribution = getattr(captum.attr, method)
    return [attribution(w).attribute(x.clone(), target=0) for w in wrappers]


def forward_equivalents(model: nn.Module, size: int) -> float:
    """Expected cost of the floor in forward passes: 1 + sum over layers of the MACs up to that layer."""
    macs, cumulative, h = [], 0.0, torch.zeros(1, 3, size, size)
    ops = plain_ops(model)
    with torch.no_grad():
        for op in ops:
            out = op(h)
            if isinstance(op, nn.Conv2d):
                cumulative += out.numel() * op.in_channels * op.kernel_size[0] * op.kernel_size[1] / op.groups
            elif isinstance(op, nn.Linear):
                cumulative += op.in_features * op.out_features
            macs.append(cumulative)
            h = out
    total = macs[-1]
    return 1.0 + sum(macs[i] for i in layer_op_index(ops)) / total


def layer_errors(a: dict, b: dict) -> tuple[float, float]:
    """Over the layers: the largest relative error of ``a`` against ``b`` and the smallest cosine similarity."""
    rel = max(float((a[n].cpu() - b[n].cpu()).norm() / b[n].cpu().norm()) for n in b)
    cos = min(float(torch.nn.functional.cosine_similarity(a[n].cpu().flatten(), b[n].cpu().flatten(), dim=0)) for n in b)
    return rel, cos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--variants", action="store_true", help="also time batched=True and autocast (GPU options)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    from cnnviz_widgets.precision import tf32

    with tf32(False):  # the baselines at the kernels' default precision
        run(args, device)


def run(args, device: torch.device) -> None:
    model = cv.load_model("vgg16", weights=None, seed=0).to(device)
    probe = cv.Probe(model, device=device)
    photos = [img for _, img in cv.sample_images()[: args.batch]]
    x = probe.preprocess(photos)

    ops = [op.to(device) for op in plain_ops(model)]
    idx = layer_op_index(ops)
    seq = nn.Sequential(*ops).eval()
    wrappers = [SeededLayer(seq, seq[i]).eval() for i in idx]

    # the three agree before anything is timed
    ours = probe.deconvnet(x)
    ref_captum = captum_loop(wrappers, x)
    worst = max(float((ours[n] - r).norm() / r.norm()) for n, r in zip(probe.layer_names, ref_captum))
    assert worst < 1e-3, f"Captum loop disagrees with the kernel: relative error {worst:.2e}"

    t_fwd = timed(lambda: seq(x), args.repeats, device)
    t_ours = timed(lambda: probe.deconvnet(x), args.repeats, device)
    t_captum = timed(lambda: captum_loop(wrappers, x), args.repeats, device)
    t_floor = timed(lambda: floor_pass(ops, idx, x), args.repeats, device)
    expected = forward_equivalents(model.cpu() if device.type == "cpu" else copy.deepcopy(model).cpu(), probe.input_size)

    print(f"VGG16 all-layer deconvnet ({len(idx)} layers), {tuple(x.shape)}, device={device}, threads={args.threads}")
    print(f"  max relative difference, kernel vs Captum loop: {worst:.1e}")
    print(f"  one plain forward          {t_fwd * 1e3:9.1f} ms")
    print(f"  cnnviz-widgets             {t_ours * 1e3:9.1f} ms  = {t_ours / t_fwd:5.2f} forwards")
    print(f"  (a) Captum loop            {t_captum * 1e3:9.1f} ms  = {t_captum / t_fwd:5.2f} forwards")
    print(f"  (b) floor, measured        {t_floor * 1e3:9.1f} ms  = {t_floor / t_fwd:5.2f} forwards")
    print(f"  (b) floor, from MACs       {expected * t_fwd * 1e3:9.1f} ms  = {expected:5.2f} forwards")
    print(f"RATIO speed-up vs Captum loop:            {t_captum / t_ours:5.2f}x  (target >= 2.5x)")
    print(f"RATIO time vs measured floor:             {t_ours / t_floor:5.2f}x  (target <= 1.3x)")
    print(f"RATIO time vs MAC floor ({expected:.1f} forwards): {t_ours / (expected * t_fwd):5.2f}x  (target <= 1.3x)")

    # the other rules: same strip, a different backward at every rectifier
    guided = probe.reconstruct(x, rule="guided")
    ref_guided = captum_loop(wrappers, x, "GuidedBackprop")
    worst_g = max(float((guided[n] - r).norm() / r.norm()) for n, r in zip(probe.layer_names, ref_guided))
    assert worst_g < 1e-3, f"Captum GuidedBackprop loop disagrees with the guided rule: relative error {worst_g:.2e}"
    t_dec, t_gui = paired(lambda: probe.reconstruct(x), lambda: probe.reconstruct(x, rule="guided"),
                          max(args.repeats, 5), device)
    _, t_grad = paired(lambda: probe.reconstruct(x), lambda: probe.reconstruct(x, rule="gradient"),
                       max(args.repeats, 5), device)
    t_captum_g = timed(lambda: captum_loop(wrappers, x, "GuidedBackprop"), args.repeats, device)
    print(f"  guided strip               {t_gui * 1e3:9.1f} ms  (deconvnet strip timed alongside: {t_dec * 1e3:.1f} ms)")
    print(f"  gradient strip             {t_grad * 1e3:9.1f} ms")
    print(f"  Captum GuidedBackprop loop {t_captum_g * 1e3:9.1f} ms  (max relative difference {worst_g:.1e})")
    print(f"RATIO guided strip vs deconvnet strip:    {t_gui / t_dec:5.2f}x  (target <= 1.05x)")
    print(f"RATIO gradient strip vs deconvnet strip:  {t_grad / t_dec:5.2f}x")
    print(f"RATIO guided speed-up vs Captum loop:     {t_captum_g / t_gui:5.2f}x")
    if args.variants:
        # the GPU options: all layers' backward passes as one batch, and reduced precision (error vs float32)
        print("variants of cnnviz-widgets (vs its default layer-by-layer float32 run above):")
        for label, kw in (("batched backward", {"batched": True}), ("precision tf32", {"precision": "tf32"}),
                          ("autocast bf16", {"autocast": "bf16"}),
                          ("autocast fp16", {"autocast": "fp16"}), ("batched + bf16", {"batched": True, "autocast": "bf16"})):
            try:
                out = probe.deconvnet(x, **kw)
            except (RuntimeError, cv.CnnvizError) as exc:
                print(f"  {label:22s} not available here ({type(exc).__name__})")
                continue
            err = max(float((out[n] - ours[n]).norm() / ours[n].norm()) for n in ours)
            t = timed(lambda kw=kw: probe.deconvnet(x, **kw), args.repeats, device)
            print(f"  {label:22s} {t * 1e3:9.1f} ms  RATIO {t_ours / t:5.2f}x faster, max relative error vs float32 {err:.1e}")
        if device.type == "cuda":  # the same deconvnet on the CPU: what "exact by default" means here
            cpu_probe = cv.Probe(copy.deepcopy(model).cpu(), device="cpu")
            on_cpu = cpu_probe.deconvnet(x.cpu())
            for label, kw in (("default (fp32, TF32 off)", {}), ("precision tf32", {"precision": "tf32"}),
                              ("batched, default", {"batched": True})):
                rel, cos = layer_errors(probe.deconvnet(x, **kw), on_cpu)
                print(f"  CUDA {label:26s} vs CPU: largest relative error {rel:.2e}, smallest cosine {cos:.6f} "
                      f"(target <= 0.02 and >= 0.999 by default)")
            rel, cos = layer_errors(probe.deconvnet(x, batched=True), ours)
            print(f"  CUDA batched vs layer by layer: largest relative error {rel:.2e}, smallest cosine {cos:.6f}")


if __name__ == "__main__":
    main()
