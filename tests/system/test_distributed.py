"""Sharded mining with torchrun (2 processes, gloo on the CPU) equals one process, exactly."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

ARGS = ["--model", "alexnet_paper", "--input-size", "96", "--top-layers", "c2,c5", "--k", "4", "--batch-size", "2"]


def run(cmd, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_torchrun_two_processes_equal_one(tmp_path):
    torchrun = shutil.which("torchrun") or pytest.skip("torchrun is not on PATH")
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    run([sys.executable, "-m", "cnnviz_widgets.mine_cli", *ARGS, "--out", str(one)], tmp_path)
    out = run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "cnnviz_widgets.mine_cli", *ARGS,
               "--out", str(two)], tmp_path)
    assert "on 2 process(es)" in out.stdout
    a, b = torch.load(one), torch.load(two)
    assert a["sparsity"]["zeros"] == b["sparsity"]["zeros"] and a["sparsity"]["n_images"] == 9
    assert a["sparsity"]["fraction"] == b["sparsity"]["fraction"]
    for layer in ("c2", "c5"):
        for key in ("values", "image_index", "yx"):
            assert torch.equal(a["top"][layer][key], b["top"][layer][key]), (layer, key)


def test_cli_reports_user_errors(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cnnviz_widgets.mine_cli", "--model", "vgg61", "--out", "x.pt"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "Unknown model 'vgg61'" in proc.stderr and "Traceback" not in proc.stderr


def test_the_readmes_scale_out_commands_are_valid():
    """The torchrun lines the README gives for several GPUs and machines parse, for torchrun and the CLI."""
    import re
    import shlex
    from pathlib import Path

    from torch.distributed.run import get_args_parser

    from cnnviz_widgets.mine_cli import parse

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    commands = [re.sub(r"\\\n\s*", "", m) for m in re.findall(r"^torchrun (?:.*\\\n)*.*$", readme, flags=re.M)]
    assert len(commands) >= 2, "the README shows the single-machine and the multi-machine command"
    for command in commands:
        words = shlex.split(command.split("#")[0])[1:]
        split = words.index("-m")
        launcher = get_args_parser().parse_args(words[: split + 2] + ["--"])
        assert launcher.module and words[split + 1] == "cnnviz_widgets.mine_cli"
        cli = parse(words[split + 2 :])
        assert cli.model == "vgg16" and cli.weights == "imagenet" and cli.out == "mined.pt"
