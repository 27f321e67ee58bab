"""Mine top patches and sparsity over a folder, on one process or many (torchrun), and save them.

    python -m cnnviz_widgets.mine_cli --model vgg16 --images /data/imagenet/val --out mined.pt
    torchrun --nproc_per_node 4 -m cnnviz_widgets.mine_cli --model vgg16 --images /data/imagenet/val --out mined.pt

Under torchrun every rank takes a strided share of the pictures (on its own GPU when there are
GPUs, with the gloo backend on CPUs), the shares are all-gathered and merged, and rank 0 writes
the file: exactly what one process would have found. Across machines, use torchrun's --nnodes and
--rdzv-endpoint as usual.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m cnnviz_widgets.mine_cli", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vgg16", help="vgg16, alexnet or alexnet_paper")
    ap.add_argument("--weights", default=None, help="'imagenet', a state_dict file, or omit for seeded random weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", default=None, help="a folder of pictures (default: the bundled sample photos)")
    ap.add_argument("--top-layers", default=None, help="comma-separated layer names (default: every conv layer)")
    ap.add_argument("--k", type=int, default=9)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader worker processes per rank")
    ap.add_argument("--out", required=True, help="where rank 0 writes the result (torch.save of plain tensors)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch.distributed as dist

    import cnnviz_widgets as cv
    from cnnviz_widgets.kernels.mine import gather_merge, mine, shard

    args = parse(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = None
    if world > 1:
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        model = cv.load_model(args.model, weights=args.weights, seed=args.seed)
        probe = cv.Probe(model, device=device, input_size=args.input_size)
        images = cv.load_images(args.images if args.images else cv.sample_images())
        top = None if args.top_layers is None else [s for s in args.top_layers.split(",") if s]
        indices = shard(len(images), rank, world) if world > 1 else None
        result = mine(probe, images, top_layers=top, k=args.k, batch_size=args.batch_size, indices=indices,
                      progress=rank == 0, num_workers=args.workers)
        result = gather_merge(result)
        if rank == 0:
            assert result.sparsity is not None  # mine() counts sparsity unless told not to
            torch.save({
                "model": args.model, "names": images.names,
                "top": {n: {"values": t.values, "image_index": t.image_index, "yx": t.yx} for n, t in result.top.items()},
                "sparsity": {"zeros": result.sparsity.zeros, "totals": result.sparsity.totals,
                             "fraction": dict(result.sparsity), "n_images": result.sparsity.n_images},
            }, args.out)
            print(f"mined {len(images)} pictures on {world} process(es): {args.out}")
    except cv.CnnvizError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
