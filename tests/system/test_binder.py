"""binder/ is consistent: CPU torch, the project installed, postBuild fetches what load_model looks for."""
from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

from cnnviz_widgets.models import MODELS

BINDER = Path(__file__).resolve().parents[2] / "binder"


def test_requirements_install_cpu_torch_and_the_project():
    lines = [l.strip() for l in (BINDER / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert "." in lines, "the project itself must be installed"
    assert any(l.startswith("--extra-index-url") and "/whl/cpu" in l for l in lines)
    torch = [l for l in lines if re.match(r"torch==", l)]
    assert torch and torch[0].endswith("+cpu")
    assert any(re.match(r"torchvision==.*\+cpu$", l) for l in lines)
    assert re.fullmatch(r"python-3\.\d+", (BINDER / "runtime.txt").read_text().strip())


def test_postbuild_is_executable_strict_and_fetches_the_zoo_weights():
    text = (BINDER / "postBuild").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("#!") and "set -e" in [l.strip() for l in lines[:6]]
    assert os.access(BINDER / "postBuild", os.X_OK)
    mode = subprocess.run(["git", "ls-files", "-s", "binder/postBuild"], capture_output=True, text=True,
                          cwd=BINDER.parent).stdout.split()
    assert not mode or mode[0] == "100755", "postBuild must be committed executable"
    calls = re.findall(r"cv\.load_model\('(\w+)', weights='imagenet'\)", text)
    # exactly the zoo models that have ImageNet weights (vgg16, alexnet), through the function the tour calls
    assert sorted(calls) == sorted(n for n, e in MODELS.items() if e.imagenet is not None)
    code = re.search(r'python -c "(.*)"', text).group(1)
    ast.parse(code)
    assert code.startswith("import cnnviz_widgets as cv")
