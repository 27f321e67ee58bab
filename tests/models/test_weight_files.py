"""Every weights file a user really has: told by its content, loaded when it holds weights, and
otherwise a message that names the file and gives the one fix."""
from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections import OrderedDict

import pytest
import torch
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.errors import short_repr
from cnnviz_widgets.models import weight_files
from cnnviz_widgets.models import zoo


class Tiny(nn.Module):
    """A conv, a BatchNorm (with its integer num_batches_tracked) and a linear head: 9 keys."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


@pytest.fixture()
def tiny_zoo(monkeypatch):
    """'tiny' registered in the zoo, so that files stay a few kilobytes."""
    monkeypatch.setitem(zoo.MODELS, "tiny", zoo.ZooEntry(Tiny, None))


@pytest.fixture()
def saved() -> dict[str, torch.Tensor]:
    """A state_dict that differs from any seeded one: random BatchNorm statistics, 7 batches tracked."""
    torch.manual_seed(11)
    model = Tiny()
    bn = model.features[1]
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.num_batches_tracked.fill_(7)
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_loaded(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """``model`` holds exactly ``state`` (floating tensors compared after casting to float32)."""
    own = model.state_dict()
    assert set(own) == set(state)
    for key, value in state.items():
        expected = value.float() if value.is_floating_point() else value
        assert own[key].dtype == expected.dtype, key
        assert torch.equal(own[key], expected), key
    assert not model.training


def message(weights, name: str = "tiny") -> str:
    with pytest.raises(cv.CnnvizError) as err:
        cv.load_model(name, weights=weights)
    return str(err.value)


# 1. a plain state dict -----------------------------------------------------------------------------

def test_plain_state_dict(tiny_zoo, saved, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(saved, path)
    assert_loaded(cv.load_model("tiny", weights=path), saved)


def test_plain_state_dict_legacy_format_and_any_file_name(tiny_zoo, saved, tmp_path):
    path = tmp_path / "weights.bin.download"  # the kind is told by the content, not the name
    torch.save(OrderedDict(saved), path, _use_new_zipfile_serialization=False)
    assert_loaded(cv.load_model("tiny", weights=str(path)), saved)


# 2. a checkpoint dict holding the state dict ----------------------------------------------------------

@pytest.mark.parametrize("key", ["state_dict", "model_state_dict", "model", "net", "network", "module",
                                 "weights", "params", "model_ema", "ema", "state_dict_ema"])
def test_checkpoint_key(tiny_zoo, saved, tmp_path, key):
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 12, "best_acc": 0.75, key: saved, "optimizer": {"state": {}, "param_groups": []}}, path)
    assert_loaded(cv.load_model("tiny", weights=path), saved)


def test_checkpoint_prefers_the_first_state_dict_that_fits(tiny_zoo, saved, tmp_path):
    other = {k: torch.full_like(v, 3) for k, v in saved.items()}
    path = tmp_path / "ckpt.pt"
    torch.save({"model": saved, "model_ema": other}, path)  # both fit: the first listed key wins
    assert_loaded(cv.load_model("tiny", weights=path), saved)
    # a state_dict for another network first: the EMA copy that fits is taken
    torch.save({"state_dict": {"backbone.weight": torch.zeros(2)}, "model_ema": other}, path)
    assert_loaded(cv.load_model("tiny", weights=path), other)


def test_checkpoint_under_an_unknown_key_says_which_key(tiny_zoo, saved, tmp_path):
    path = tmp_path / "odd.ckpt"
    torch.save({"epoch": 1, "my_weights": saved}, path)
    msg = message(path)
    assert "odd.ckpt" in msg and "'my_weights'" in msg
    assert "weights=torch.load(" in msg and "['my_weights']" in msg
    # the suggested fix works
    assert_loaded(cv.load_model("tiny", weights=torch.load(path, weights_only=True)["my_weights"]), saved)
    torch.save({"epoch": 1, "lr": 0.1}, path)
    msg = message(path)
    assert "does not hold a state_dict" in msg and "'epoch', 'lr'" in msg


# 3. keys with a wrapper's prefix ------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["module.", "model.", "_orig_mod.", "net.", "module.model.", "_orig_mod.module."])
def test_prefixed_keys(tiny_zoo, saved, tmp_path, prefix):
    path = tmp_path / "prefixed.pth"
    torch.save({prefix + k: v for k, v in saved.items()}, path)
    assert_loaded(cv.load_model("tiny", weights=path), saved)


def test_real_wrappers_data_parallel_and_torch_compile(tiny_zoo, saved, tmp_path):
    model = Tiny()
    model.load_state_dict(saved)
    for wrapped in (nn.DataParallel(model), torch.compile(model)):
        path = tmp_path / "wrapped.pth"
        state = wrapped.state_dict()
        assert all(k.startswith(("module.", "_orig_mod.")) for k in state)
        torch.save(state, path)
        assert_loaded(cv.load_model("tiny", weights=path), saved)


def test_lightning_checkpoint_with_other_entries(tiny_zoo, saved, tmp_path):
    path = tmp_path / "epoch=3-step=100.ckpt"
    state = {"model." + k: v for k, v in saved.items()}
    state["criterion.weight"] = torch.ones(5)  # a weighted loss, saved beside the network
    state["model_ema.head.bias"] = torch.zeros(5)
    torch.save({"epoch": 3, "global_step": 100, "pytorch-lightning_version": "2.4.0", "state_dict": state,
                "hyper_parameters": {"lr": 0.01}}, path)
    assert_loaded(cv.load_model("tiny", weights=path), saved)


def test_prefix_that_almost_fits_is_named(tiny_zoo, saved, tmp_path):
    path = tmp_path / "almost.pth"
    state = {"model." + k: v for k, v in saved.items() if k != "head.bias"}
    torch.save(state, path)
    msg = message(path)
    assert "almost.pth" in msg and "'tiny'" in msg
    assert "'model.'" in msg and "8 of the model's 9 keys" in msg and "missing 1 keys (e.g. head.bias)" in msg
    # extra entries beside the model's keys, with no prefix to take them apart, stay unexpected
    torch.save({**saved, "criterion.weight": torch.ones(5)}, path)
    msg = message(path)
    assert "1 unexpected keys (e.g. criterion.weight)" in msg and "another architecture" in msg


# 4. safetensors ----------------------------------------------------------------------------------

def test_safetensors_file(tiny_zoo, saved, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(saved, path, metadata={"format": "pt"})
    assert_loaded(cv.load_model("tiny", weights=path), saved)


def test_safetensors_half_precision_prefixed_and_misnamed(tiny_zoo, saved, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "pytorch_model.pth"  # safetensors content under a .pth name
    half = {"model." + k: (v.half() if v.is_floating_point() else v) for k, v in saved.items()}
    safetensors_torch.save_file(half, path)
    assert_loaded(cv.load_model("tiny", weights=path), {k[len("model."):]: v for k, v in half.items()})


def test_safetensors_without_the_package(tiny_zoo, saved, tmp_path, monkeypatch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(saved, path)
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import safetensors now raises ImportError
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    msg = message(path)
    assert "model.safetensors" in msg and "safetensors file" in msg and "pip install safetensors" in msg


def test_truncated_safetensors_file(tiny_zoo, saved, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "cut.safetensors"
    safetensors_torch.save_file(saved, path)
    path.write_bytes(path.read_bytes()[:-100])
    msg = message(path)
    assert "cut.safetensors" in msg and "corrupt or truncated" in msg


# 5. TorchScript archives ---------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_archive(tiny_zoo, saved, tmp_path, how):
    model = Tiny().eval()
    model.load_state_dict(saved)
    scripted = torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.zeros(1, 3, 8, 8))
    path = tmp_path / f"{how}.pt"
    torch.jit.save(scripted, str(path))
    msg = message(path)
    assert f"{how}.pt" in msg and "TorchScript" in msg and "corrupt" not in msg
    assert f"cv.load_model('tiny', weights=torch.jit.load('{path}').state_dict())" in msg
    assert_loaded(cv.load_model("tiny", weights=torch.jit.load(str(path)).state_dict()), saved)  # the fix works


# 6. a whole pickled model --------------------------------------------------------------------------

def test_whole_pickled_torchvision_model(tmp_path):
    import torchvision

    path = tmp_path / "squeezenet_full.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None), path)
    msg = message(path, "alexnet")
    assert "squeezenet_full.pth" in msg
    assert "whole pickled model of class torchvision.models.squeezenet.SqueezeNet" in msg
    assert f"model = torch.load('{path}', weights_only=False)" in msg and "cv.Probe(model)" in msg
    assert "model.state_dict()" in msg
    model = torch.load(path, weights_only=False)  # the fix, for a file one trusts
    cv.Probe(model, device="cpu")


def test_whole_pickled_model_of_a_class_not_imported_here(tmp_path, monkeypatch):
    (tmp_path / "mynets.py").write_text(textwrap.dedent("""
        from torch import nn

        class MyNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 2, 3)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import mynets

    path = tmp_path / "mynet.pt"
    torch.save(mynets.MyNet(), path)
    monkeypatch.delitem(sys.modules, "mynets")  # as in a notebook that never imported it
    msg = message(path, "alexnet")
    assert "mynet.pt" in msg and "whole pickled model of class mynets.MyNet" in msg
    assert "weights_only=False" in msg and "mynets" not in sys.modules  # nothing was imported to tell


def test_other_pickles_are_still_refused(tmp_path):
    path = tmp_path / "with_args.pth"
    torch.save({"args": argparse.Namespace(lr=0.1), "state_dict": {"w": torch.zeros(1)}}, path)
    msg = message(path, "alexnet")
    assert "Refused to load" in msg and "with_args.pth" in msg and "argparse.Namespace" in msg
    assert "whole pickled model" not in msg


# 7. a state dict (or anything else) passed as weights= --------------------------------------------

def test_state_dict_passed_as_weights(tiny_zoo, saved):
    source = Tiny()
    source.load_state_dict(saved)
    model = cv.load_model("tiny", weights=source.state_dict())
    assert_loaded(model, saved)
    with torch.no_grad():
        source.head.bias.add_(1)  # the loaded model does not share memory with the caller's
    assert torch.equal(model.head.bias, saved["head.bias"])


def test_checkpoint_or_prefixed_state_dict_passed_as_weights(tiny_zoo, saved):
    assert_loaded(cv.load_model("tiny", weights={"epoch": 2, "state_dict": saved}), saved)
    assert_loaded(cv.load_model("tiny", weights={"module." + k: v for k, v in saved.items()}), saved)
    msg = message({k: v for k, v in saved.items() if k != "head.weight"})
    assert "the state dict passed as weights=" in msg and "head.weight" in msg


def test_a_big_state_dict_of_another_model_gives_a_short_message(alexnet_paper):
    msg = message(alexnet_paper.state_dict(), "vgg16")
    assert "the state dict passed as weights=" in msg and "'vgg16'" in msg and len(msg) < 1000


def test_other_objects_passed_as_weights_are_named_briefly(tiny_zoo):
    msg = message(Tiny())
    assert "weights=<Tiny module> is not understood" in msg and "state_dict()" in msg
    msg = message({str(i): i for i in range(100_000)})
    assert "weights=<dict of 100000 items> is not understood" in msg and len(msg) < 400
    msg = message(list(range(100_000)))
    assert "<list of 100000 items>" in msg and len(msg) < 400
    msg = message("x" * 100_000 + ".pth")
    assert "cannot be read: File name too long. Check the path." in msg and ".pth'" in msg and len(msg) < 500
    with pytest.raises(cv.UnknownModelError) as err:
        cv.load_model("v" * 100_000)
    assert len(str(err.value)) < 500


def test_short_repr():
    assert short_repr(42) == "42" and short_repr("a.pth") == "'a.pth'"
    long = short_repr("/data/" + "d" * 1000 + "/best.pth", 100)
    assert len(long) <= 100 and long.startswith("'/data/") and long.endswith("/best.pth'")
    assert short_repr(torch.zeros(3, 4)) == "<Tensor of shape (3, 4), torch.float32>"
    assert short_repr({"a": 1}) == "{'a': 1}" and short_repr([3, 3]) == "[3, 3]"  # short containers as they are
    assert short_repr({str(i): i for i in range(1000)}) == "<dict of 1000 items>"


# 8. files that cannot be read ----------------------------------------------------------------------

def test_permission_denied(tiny_zoo, saved, tmp_path, monkeypatch):
    path = tmp_path / "locked.pth"
    torch.save(saved, path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root reads anything: make open() answer as it does for others
            def denied(file, *args, **kwargs):
                raise PermissionError(13, "Permission denied", str(file))

            monkeypatch.setattr(weight_files, "open", denied, raising=False)
        msg = message(path)
    finally:
        path.chmod(0o600)
    assert f"'{path}' cannot be read: permission denied" in msg and "corrupt" not in msg


def test_permission_denied_while_loading(tiny_zoo, saved, tmp_path, monkeypatch):
    path = tmp_path / "racy.pth"
    torch.save(saved, path)

    def denied(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(torch, "load", denied)
    msg = message(path)
    assert "racy.pth" in msg and "cannot be read: permission denied" in msg and "corrupt" not in msg


def test_folder_and_missing_file_keep_their_messages(tiny_zoo, tmp_path):
    assert "is a folder" in message(tmp_path)
    assert f"'{tmp_path / 'gone.pth'}' does not exist" in message(tmp_path / "gone.pth")


# 9. half precision, bfloat16, float64 --------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_or_high_precision_files_give_a_float32_model(tiny_zoo, saved, tmp_path, dtype):
    path = tmp_path / f"tiny_{dtype}.pth"
    cast = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in saved.items()}
    torch.save(cast, path)
    model = cv.load_model("tiny", weights=path)
    assert_loaded(model, cast)  # equal to the file's values, in float32
    assert model.features[1].num_batches_tracked.dtype == torch.int64
    assert model.features[1].num_batches_tracked.item() == 7
    assert model(torch.rand(2, 3, 8, 8)).dtype == torch.float32  # it runs on float32 input


def test_half_precision_state_dict_passed_as_weights(tiny_zoo, saved):
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in saved.items()}
    model = cv.load_model("tiny", weights=half)
    assert_loaded(model, half)
    assert all(p.dtype == torch.float32 for p in model.parameters())
