"""The model zoo: names, seeded random weights, ImageNet weights offline, local state_dict files."""
from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

import cnnviz_widgets as cv
from cnnviz_widgets.models.weights import checkpoint_path


def _digest(model: nn.Module) -> float:
    return float(sum(p.double().sum() for p in model.state_dict().values()))


def test_papers_alexnet_architecture(alexnet_paper):
    convs = [m for m in alexnet_paper.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert (convs[0].kernel_size, convs[0].stride, convs[0].padding) == ((11, 11), (4, 4), (2, 2))
    assert convs[1].kernel_size == (5, 5) and all(c.kernel_size == (3, 3) for c in convs[2:])
    assert all(c.stride == (1, 1) and c.padding == (1, 1) for c in convs[1:])
    pools = [m for m in alexnet_paper.features if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    assert not any("LocalResponseNorm" in type(m).__name__ for m in alexnet_paper.modules())
    fcs = [m for m in alexnet_paper.classifier if isinstance(m, nn.Linear)]
    assert [f.out_features for f in fcs] == [4096, 4096, 1000]
    out = alexnet_paper(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, 1000)


@pytest.mark.parametrize("name", ["vgg16", "alexnet", "alexnet_paper"])
def test_seeded_weights_are_deterministic_and_leave_global_rng_alone(name):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = cv.load_model(name, weights=None, seed=7)
    after = torch.rand(3)
    assert torch.equal(before, after)  # global RNG untouched
    b = cv.load_model(name, weights=None, seed=7)
    c = cv.load_model(name, weights=None, seed=8)
    assert _digest(a) == _digest(b) != _digest(c)
    assert not a.training


def test_unknown_model_name():
    with pytest.raises(cv.UnknownModelError, match="Known names: vgg16, alexnet, alexnet_paper"):
        cv.load_model("vgg61")


def test_imagenet_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision

    def offline(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.models.VGG16_Weights.IMAGENET1K_V1.__class__, "get_state_dict",
                        lambda self, *a, **k: offline())
    with pytest.raises(cv.WeightsUnavailableError) as err:
        cv.load_model("vgg16", weights="imagenet")
    msg = str(err.value)
    assert "vgg16-397923af.pth" in msg and str(tmp_path) in msg
    assert "weights=None" in msg and "weights='path/to/" in msg


def test_imagenet_really_offline_here_or_cached(tmp_path, monkeypatch):
    """With an empty TORCH_HOME and no internet, the real download fails with the clear error."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    try:
        model = cv.load_model("alexnet", weights="imagenet")
    except cv.WeightsUnavailableError as err:
        assert "weights=None" in str(err)
    else:  # a machine with internet: the weights arrived through torchvision's API, into TORCH_HOME
        import torchvision

        assert checkpoint_path(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url).is_file()
        assert isinstance(model, nn.Module)


def test_imagenet_weights_come_from_the_torch_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision

    url = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
    path = checkpoint_path(url)
    assert path.parent == tmp_path / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    source = cv.load_model("alexnet", weights=None, seed=3)
    torch.save(source.state_dict(), path)
    loaded = cv.load_model("alexnet", weights="imagenet")
    assert _digest(loaded) == _digest(source)


def test_papers_alexnet_has_no_published_weights():
    with pytest.raises(cv.WeightsUnavailableError, match="No ImageNet weights are published for 'alexnet_paper'"):
        cv.load_model("alexnet_paper", weights="imagenet")


def test_local_state_dict_round_trip(tmp_path):
    src = cv.load_model("alexnet_paper", weights=None, seed=5)
    path = tmp_path / "alex.pth"
    torch.save(src.state_dict(), path)
    assert _digest(cv.load_model("alexnet_paper", weights=str(path))) == _digest(src)
    assert _digest(cv.load_model("alexnet_paper", weights=path)) == _digest(src)
    # checkpoint dicts and DataParallel prefixes are unwrapped
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, path)
    assert _digest(cv.load_model("alexnet_paper", weights=path)) == _digest(src)


def test_missing_weights_file(tmp_path):
    with pytest.raises(cv.WeightsFileError, match=r"nope\.pth' does not exist"):
        cv.load_model("vgg16", weights=str(tmp_path / "nope.pth"))


def test_corrupt_weights_file(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"PK\x03\x04 this is not a real checkpoint" * 10)
    with pytest.raises(cv.WeightsFileError, match="broken.pth.*corrupt"):
        cv.load_model("alexnet", weights=path)
    folder = tmp_path / "dir.pth"
    folder.mkdir()
    with pytest.raises(cv.WeightsFileError, match="is a folder"):
        cv.load_model("alexnet", weights=folder)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if ever unpickled


def test_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _Payload(str(marker))}, path)
    with open(tmp_path / "evil2.pth", "wb") as fh:
        pickle.dump(_Payload(str(marker)), fh)
    for p in (path, tmp_path / "evil2.pth"):
        with pytest.raises(cv.WeightsFileError) as err:
            cv.load_model("alexnet", weights=p)
        assert p.name in str(err.value)
    assert not marker.exists()


def test_weights_of_another_architecture(tmp_path):
    path = tmp_path / "vgg.pth"
    torch.save(cv.load_model("vgg16", weights=None).state_dict(), path)
    with pytest.raises(cv.WeightsFileError) as err:
        cv.load_model("alexnet_paper", weights=path)
    msg = str(err.value)
    assert "vgg.pth" in msg and "alexnet_paper" in msg and "another architecture" in msg
    torch.save({"weights": [1, 2, 3]}, path)
    with pytest.raises(cv.WeightsFileError, match="does not hold a state_dict"):
        cv.load_model("alexnet", weights=path)


def test_weights_argument_of_the_wrong_type():
    with pytest.raises(cv.CnnvizError, match="weights=42 is not understood"):
        cv.load_model("alexnet", weights=42)


def test_offline_no_downloading_line_reads_as_an_error(tmp_path, monkeypatch, capfd):
    """Offline, torch.hub's 'Downloading: ...' line is not printed above the banner (it read as an error)."""
    import cnnviz_widgets.models.weights as weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, timeout=5.0):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(weights, "reach", offline)
    model, note = cv.load_model_or_random("alexnet")
    assert "seeded random weights are used" in note and isinstance(model, nn.Module)
    assert "Downloading" not in capfd.readouterr().err
