#!/usr/bin/env bash
# Fetch, here, the Python packages that benchmarks/gpu_report.sh needs and a lent GPU machine's image lacks
# (it has PyTorch, torchvision, scikit-learn, scikit-image, Pillow, tqdm, psutil and pytest; it cannot reach
# PyPI). They land in .whl/ (git-ignored), built for that machine's Python 3.12 on x86-64, pinned to the
# versions the tests pass with, without dependencies: the list below is the whole closure.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(
  captum==0.9.0 openTSNE==1.0.4                                   # the Captum baseline; t-SNE
  anywidget==0.11.0 psygnal==0.16.1 ipywidgets==8.1.9 comm==0.2.3 # the soak test's DeconvExplorer ...
  traitlets==5.15.0 widgetsnbextension==4.0.16 jupyterlab_widgets==3.0.17
  ipython==8.12.3 decorator==5.2.1 jedi==0.20.0 parso==0.8.7 matplotlib-inline==0.2.2 pexpect==4.8.0
  ptyprocess==0.7.0 prompt_toolkit==3.0.52 wcwidth==0.7.0 stack-data==0.6.3 asttokens==3.0.1
  executing==2.2.1 pure_eval==0.2.3 backcall==0.2.0 pickleshare==0.7.5  # ... and the IPython it imports
  bqplot==0.13.1 bqscales==0.3.7 traittypes==0.2.3                # the charts cnnviz_widgets.widgets imports ...
  pandas==3.1.1 python-dateutil==2.9.0.post0 six==1.17.0          # ... and what bqplot imports
)
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${packages[@]}"
du -sh .whl
