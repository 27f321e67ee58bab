"""Big folders (issue 6): top patches and sparsity over generated JPEG folders read by DataLoader worker
processes keep peak memory flat as the folder grows tenfold (the benchmark's own code, at CI scale and without its
plain loop: benchmarks/bench_big_folder.py runs both at 1,000 and 10,000 pictures and 224 px and prints the ratio)."""
from __future__ import annotations

import torch

import cnnviz_widgets as cv


def test_peak_memory_is_flat_from_200_to_2000_jpegs(bench, tmp_path):
    root = bench.make_folder(tmp_path / "jpegs", 2000, side=72)
    assert len(list(root.rglob("*.jpg"))) == 2000
    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), input_size=96)
    bench.measure(probe, bench.source_for(root, 100, 2000), plain=False)  # warm-up: allocator pools, lazy imports
    small = bench.measure(probe, bench.source_for(root, 200, 2000), plain=False)
    big = bench.measure(probe, root, plain=False)  # the folder itself, listed recursively
    assert small["workers"] >= 1 and big["workers"] >= 1, "folders this size are read by worker processes"
    assert small["n"] == 200 and big["n"] == 2000
    assert big["mined"].sparsity.n_images == 2000
    assert big["mined"].top["c5"].values.shape == (256, 9) and bool((big["mined"].top["c5"].image_index >= 0).all())
    main_growth = big["mine_mib"][0] - small["mine_mib"][0]
    readers_growth = big["mine_mib"][1] - small["mine_mib"][1]
    print(f"\nmining 200 -> 2000 JPEGs with {big['workers']} readers: peak RSS {small['mine_mib'][0]:.0f} -> "
          f"{big['mine_mib'][0]:.0f} MiB ({main_growth:+.0f}), readers' own memory {small['mine_mib'][1]:.0f} -> "
          f"{big['mine_mib'][1]:.0f} MiB ({readers_growth:+.0f}) (the time against a plain loop: benchmarks/bench_big_folder.py)")
    assert main_growth < 40, f"peak memory grew by {main_growth:.0f} MiB for 10x the pictures"
    assert readers_growth < 40, f"the reader processes grew by {readers_growth:.0f} MiB for 10x the pictures"


def test_the_listed_folder_and_its_paths_give_the_same_mining(bench, tmp_path):
    root = bench.make_folder(tmp_path / "jpegs", 120, side=72)
    probe = cv.Probe(cv.load_model("alexnet_paper", weights=None, seed=0), input_size=96)
    by_folder = cv.mine(probe, root, top_layers=["c3"], k=4, progress=False)
    by_paths = cv.mine(probe, bench.source_for(root, 120, 10**9), top_layers=["c3"], k=4, progress=False, num_workers=0)
    assert torch.equal(by_folder.top["c3"].values, by_paths.top["c3"].values)
    assert torch.equal(by_folder.top["c3"].image_index, by_paths.top["c3"].image_index)
    assert by_folder.sparsity.zeros == by_paths.sparsity.zeros
