"""TorchvisionNet: fits through the CLI, a frozen backbone stays frozen, offline weights
get a clear message, grey inputs, and what ``activation`` and ``init`` change."""

import pytest
import torch
from torch import nn
from torchvision.models import get_model

from main import main
from netscope.models import TorchvisionNet
from netscope.models.torchvision_net import REPLACEABLE_ACTIVATIONS
from tests.helpers import SHARED_DATA, metrics, requires_shared, run
from tests.image_folders import make_class_folder


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A resnet18 state dict file, standing in for downloaded pretrained weights."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(get_model("resnet18").state_dict(), path)
    return path


def image_folder_args(root, optimizer: str = "torch.optim.Adam") -> list[str]:
    return ["--data", "netscope.datamodules.ImageFolderDataModule", "--data.init_args.data_dir", str(root),
            "--data.init_args.image_size", "32", "--data.init_args.batch_size", "4", "--optimizer", optimizer,
            "--trainer.logger", "false", "--trainer.enable_model_summary", "false"]


def test_fit_fast_dev_run_on_an_image_folder(tmp_path):
    root = make_class_folder(tmp_path / "shapes", corrupt=False)
    run_dir = run("fit", "--model", "netscope.models.TorchvisionNet", "--model.init_args.arch", "mobilenet_v3_small",
                  *image_folder_args(root), "--trainer.fast_dev_run", "1", root=tmp_path / "runs")
    result = metrics(run_dir)
    assert result["status"] == "completed" and "test/acc" in result


@pytest.mark.slow  # a ResNet-18 fit: half a minute (the fast_dev_run test covers the path)
@requires_shared("mnist")
def test_grey_mnist_fits_with_resnet18(tmp_path):
    run_dir = run("fit", "--model", "netscope.models.TorchvisionNet", "--data", "netscope.datamodules.MNISTDataModule",
                  "--data.init_args.data_dir", str(SHARED_DATA / "mnist"), "--optimizer", "torch.optim.Adam",
                  "--trainer.fast_dev_run", "1",
                  "--trainer.logger", "false", "--trainer.enable_model_summary", "false",
                  root=tmp_path / "runs")
    assert metrics(run_dir)["status"] == "completed"


def test_frozen_backbone_gets_no_gradients_and_does_not_change(tmp_path, resnet18_file):
    weights = resnet18_file
    model = TorchvisionNet(num_classes=3, input_shape=(3, 32, 32), arch="resnet18",
                           weights=str(weights), freeze_backbone=True)
    model.train()
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    for name, parameter in model.network.named_parameters():
        assert (parameter.grad is not None) == name.startswith("fc."), name
    assert not model.network.bn1.training and model.network.fc.training

    root = make_class_folder(tmp_path / "shapes", corrupt=False)
    run_dir = run("fit", "--model", "netscope.models.TorchvisionNet", "--model.init_args.weights", str(weights),
                  "--model.init_args.freeze_backbone", "true", "--model.init_args.init", "zeros",
                  *image_folder_args(root, "torch.optim.SGD"), "--trainer.max_epochs", "1",
                  "--trainer.limit_train_batches", "3", "--optimizer.lr", "0.1",
                  "--optimizer.momentum", "0.9",
                  "--optimizer.weight_decay", "0.01", "--test_after_fit", "false", root=tmp_path / "runs")
    assert metrics(run_dir)["global_step"] == 3
    trained = torch.load(next((run_dir / "checkpoints").glob("*.ckpt")), weights_only=True)["state_dict"]
    before = torch.load(weights, weights_only=True)
    for name, value in before.items():  # weights, and BatchNorm running statistics too
        if not name.startswith("fc."):
            assert torch.equal(trained[f"network.{name}"], value), name
    assert trained["network.fc.weight"].shape == (3, 512)
    assert trained["network.fc.weight"].abs().sum() > 0  # the head started at zeros and learned


def test_offline_weights_say_where_the_file_goes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for key in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(key, "http://127.0.0.1:9")  # nothing listens: offline, even on CI
    root = make_class_folder(tmp_path / "shapes", corrupt=False)
    args = ["fit", "--model", "netscope.models.TorchvisionNet", "--model.init_args.arch", "mobilenet_v3_small",
            "--model.init_args.weights", "DEFAULT", *image_folder_args(root), "--trainer.fast_dev_run", "1",
            "--trainer.default_root_dir", str(tmp_path / "runs")]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    target = tmp_path / "torch" / "hub" / "checkpoints" / "mobilenet_v3_small-047dcff4.pth"
    assert str(target) in error and "Traceback" not in error

    # With the file where the message says, the weights load without a network.
    target.parent.mkdir(parents=True, exist_ok=True)
    reference = get_model("mobilenet_v3_small").state_dict()
    torch.save(reference, target)
    model = TorchvisionNet(num_classes=3, input_shape=(3, 32, 32), arch="mobilenet_v3_small",
                           weights="DEFAULT")
    loaded = model.network.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in reference.items() if not k.startswith("classifier.3."))
    assert loaded["classifier.3.weight"].shape == (3, 1024)


def test_wrong_names_are_clear_errors(tmp_path, capsys):
    root = make_class_folder(tmp_path / "shapes", corrupt=False)
    for flag, value, expected in (("arch", "resnet19", "Did you mean resnet18"),
                                  ("weights", "IMAGENET9K", "Choose one of: IMAGENET1K_V1, DEFAULT")):
        with pytest.raises(SystemExit):
            main(["fit", "--model", "netscope.models.TorchvisionNet", f"--model.init_args.{flag}", value,
                  *image_folder_args(root), "--trainer.default_root_dir", str(tmp_path / "runs")])
        error = capsys.readouterr().err
        assert expected in error and "Traceback" not in error
    with pytest.raises(Exception, match="cannot take inputs of shape"):
        TorchvisionNet(num_classes=3, input_shape=(3, 8, 8), arch="densenet121")


def test_grey_input_equals_rgb_network_on_repeated_channels(resnet18_file):
    weights = resnet18_file
    grey = TorchvisionNet(num_classes=10, input_shape=(1, 28, 28), weights=str(weights)).eval()
    rgb = TorchvisionNet(num_classes=10, input_shape=(3, 28, 28), weights=str(weights)).eval()
    rgb.network.fc.load_state_dict(grey.network.fc.state_dict())
    assert grey.network.conv1.in_channels == 1
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-4, rtol=1e-4)
    scratch = TorchvisionNet(num_classes=10, input_shape=(1, 28, 28), arch="resnet18")
    assert scratch(torch.rand(2, 28, 28)).shape == (2, 10)  # (N, H, W) grey batches too


def test_activation_and_init_apply_as_documented(resnet18_file):
    shape = {"num_classes": 3, "input_shape": (3, 32, 32)}
    own = TorchvisionNet(**shape, arch="mobilenet_v3_small")
    kinds = {type(m) for m in own.modules()}
    assert nn.Hardswish in kinds and nn.ReLU in kinds  # its own activations by default

    tanh = TorchvisionNet(**shape, arch="mobilenet_v3_small", activation="tanh")
    assert not any(isinstance(m, REPLACEABLE_ACTIVATIONS) for m in tanh.modules())
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == sum(
        isinstance(m, REPLACEABLE_ACTIVATIONS) for m in own.modules())
    assert any(isinstance(m, nn.Hardsigmoid) for m in tanh.modules())  # gates stay

    def layers(model):
        return [m for m in model.network.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    scratch = TorchvisionNet(**shape, arch="resnet18", init="zeros")
    assert all(layer.weight.abs().sum() == 0 for layer in layers(scratch))  # the whole network

    weights = resnet18_file
    tuned = TorchvisionNet(**shape, arch="resnet18", init="zeros", weights=str(weights))
    assert tuned.network.fc.weight.abs().sum() == 0  # the new head ...
    assert torch.equal(tuned.network.conv1.weight, torch.load(weights)["conv1.weight"])  # ... only
    with pytest.warns(UserWarning, match="replaces the activations the pretrained"):
        TorchvisionNet(**shape, arch="resnet18", activation="gelu", weights=str(weights))
