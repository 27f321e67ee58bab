"""representation_space (whole call: forward passes, PCA, openTSNE, grid) vs scikit-learn's t-SNE alone.

Both embed the same 4,000 sampled activation vectors of VGG16's c4_1 (PCA to 50 first); the
trustworthiness of each embedding (10 neighbours) is printed beside the times.
Run: python benchmarks/bench_embedding.py [--patches 4000] [--layer c4_1] [--threads 2]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, trustworthiness

import cnnviz_widgets as cv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=4000)
    ap.add_argument("--layer", default="c4_1")
    ap.add_argument("--grid", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=0, help="use this many shifted copies of the sample photos "
                    "(enough distinct units for --patches 50000: 64 or more)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-reference", action="store_true", help="time cv.representation_space alone "
                    "(scikit-learn's t-SNE and the O(n^2) trustworthiness do not scale to 50,000 points)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    probe = cv.Probe(cv.load_model("vgg16", weights=None), device=args.device)
    photos = cv.sample_images()
    if args.images:
        base = [np.asarray(img) for _, img in photos]
        photos = [np.ascontiguousarray(np.roll(base[i % len(base)], 17 * i, axis=1)) for i in range(args.images)]

    t = time.perf_counter()
    rs = cv.representation_space(probe, photos, args.layer, n_patches=args.patches, grid=args.grid, progress=False)
    t_ours = time.perf_counter() - t
    if args.no_reference:
        print(f"VGG16 {args.layer}: {len(rs.units)} patches from {len(photos)} pictures, grid {args.grid}, "
              f"device={probe.device}, threads={args.threads}: cv.representation_space, whole call {t_ours:.1f} s")
        return

    feats = rs.features.numpy()
    z = PCA(min(50, feats.shape[1]), random_state=0).fit_transform(feats).astype(np.float32)
    t = time.perf_counter()
    ref = TSNE(2, random_state=0, init="pca", n_jobs=args.threads).fit_transform(z)
    t_sk = time.perf_counter() - t

    tw_ours = trustworthiness(z, rs.xy, n_neighbors=10)
    tw_sk = trustworthiness(z, ref, n_neighbors=10)
    print(f"VGG16 {args.layer}: {len(rs.units)} patches from {len(photos)} photos, grid {args.grid}, threads={args.threads}")
    print(f"  cv.representation_space, whole call   {t_ours:6.2f} s   trustworthiness {tw_ours:.4f}")
    print(f"  scikit-learn TSNE alone (defaults)    {t_sk:6.2f} s   trustworthiness {tw_sk:.4f}")
    print(f"RATIO speed-up vs scikit-learn t-SNE alone: {t_sk / t_ours:.2f}x (target >= 2x); "
          f"trustworthiness difference {tw_ours - tw_sk:+.4f}")


if __name__ == "__main__":
    main()
