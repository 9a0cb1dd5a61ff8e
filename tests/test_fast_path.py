"""The fast path: tensor loader and its DDP shards, batched augmentation, whitening init,
test-time augmentation, per-step LR schedules, and configs/cifar.yaml end to end."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback

from netscope.cli import NetscopeCLI
from netscope.core.errors import UserError
from netscope.datamodules.augment import (
    alternating_flip,
    random_cutout,
    random_flip,
    random_translate,
)
from netscope.datamodules.loader import TensorLoader
from netscope.models import ConvNet
from netscope.models.initialization import stored_parameter, whitening_init
from netscope.models.tta import tta_outputs
from tests.helpers import CONFIGS, metrics, run

CIFAR_NET = dict(num_classes=10, input_shape=(3, 32, 32), widths=[8, 16], stem_width=24,
                 stem_kernel_size=2, stem_norm=False, freeze_stem=True, init="whitening")


# ------------------------------------------------------------------------------ loader
def _epoch(loader: TensorLoader) -> list[int]:
    return [int(i) for batch in loader for i in batch[1]]


def test_loader_shards_are_disjoint_equal_and_cover_the_data() -> None:
    data = (torch.arange(103).float()[:, None], torch.arange(103))
    shards = [TensorLoader(data, batch_size=10, shuffle=True, seed=7, rank=r, world_size=3)
              for r in range(3)]
    seen = [_epoch(shard) for shard in shards]
    assert [len(s) for s in seen] == [34, 34, 34]  # equal, so DDP ranks stay in step
    assert len({len(shard) for shard in shards}) == 1
    assert not set(seen[0]) & set(seen[1]) and not set(seen[1]) & set(seen[2])
    assert len(set().union(*seen)) == 102  # one sample left out so that shards are equal
    assert all(int(x) == y for shard in shards for xb, yb in shard for x, y in zip(xb, yb))


def test_loader_is_deterministic_per_seed_and_reshuffles_every_pass() -> None:
    data = (torch.zeros(50, 1), torch.arange(50))
    first, again = (TensorLoader(data, 8, shuffle=True, seed=1) for _ in range(2))
    assert _epoch(first) == _epoch(again)
    a, b = _epoch(first), _epoch(first)
    assert a != b and sorted(a) == sorted(b) == list(range(50))
    assert _epoch(TensorLoader(data, 8, shuffle=True, seed=2)) != _epoch(
        TensorLoader(data, 8, shuffle=True, seed=1))
    assert _epoch(TensorLoader(data, 8)) == list(range(50))
    dropping = TensorLoader(data, 8, drop_last=True)
    assert len(dropping) == 6 == len(list(dropping))
    with pytest.raises(ValueError):
        TensorLoader(data, 8, rank=2, world_size=2)


# ------------------------------------------------------------------------ augmentation
def _images(n: int = 64) -> torch.Tensor:
    return torch.randn(n, 3, 12, 12)


def test_flips_mirror_some_images_and_alternating_flips_alternate() -> None:
    images = _images()
    flipped = random_flip(images)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(1)
    kept = (flipped == images).flatten(1).all(1)
    assert (mirrored | kept).all() and 0 < mirrored.sum() < len(images)
    phase = torch.rand(len(images)) < 0.5
    even, odd = alternating_flip(images, phase, 0), alternating_flip(images, phase, 1)
    assert torch.equal(even[phase], images[phase].flip(-1))
    assert torch.equal(even[~phase], images[~phase])
    assert torch.equal(odd, torch.where(phase[:, None, None, None], images, images.flip(-1)))


def test_translate_moves_content_without_changing_it() -> None:
    images, pad = _images(), 2
    shifted = random_translate(images, pad)
    assert shifted.shape == images.shape
    padded = F.pad(images, (pad,) * 4, mode="reflect")
    offsets = []
    for i in range(len(images)):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(shifted[i], padded[i, :, dy:dy + 12, dx:dx + 12])]
        assert matches, f"image {i} is not a shifted crop of its padded original"
        offsets.append(matches[0])
    assert len(set(offsets)) > 5  # drawn per image


def test_cutout_blanks_one_square_per_image() -> None:
    images = torch.ones(16, 3, 12, 12)
    out = random_cutout(images, 4)
    zeros = (out == 0).all(1).flatten(1).sum(1)
    assert ((zeros > 0) & (zeros <= 16)).all() and (zeros == 16).any()


# ----------------------------------------------------------------- init, TTA, schedules
def test_whitening_init_sets_the_first_conv_from_data() -> None:
    torch.manual_seed(0)
    model = ConvNet(**CIFAR_NET)
    stem = model.features[0][0]
    before = stem.weight.clone()
    inputs = torch.randn(64, 3, 32, 32) * torch.tensor([1.0, 3.0, 0.3]).view(1, 3, 1, 1)
    whitening_init(model, inputs)
    assert not torch.equal(before, stem.weight) and not stem.weight.requires_grad
    out = F.conv2d(inputs, stem.weight)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = out.T @ out / len(out)
    assert torch.allclose(covariance, torch.eye(12), atol=0.01)  # decorrelated, unit variance
    assert torch.equal(stem.weight[12:], -stem.weight[:12])


@pytest.mark.parametrize("layer", ["bn", "stem"])
def test_bias_lr_scales_speed_up_their_biases_under_sgd(layer: str) -> None:
    moved = []
    for scale in (1.0, 16.0):
        torch.manual_seed(0)
        option = "bn_bias_lr_scale" if layer == "bn" else "stem_bias_lr_scale"
        model = ConvNet(**CIFAR_NET, **{option: scale})
        whitening_init(model, torch.randn(64, 3, 32, 32))
        biased = model.features[1][2] if layer == "bn" else model.features[0][0]
        before = biased.bias.detach().clone()
        assert layer == "bn" or not before.any()  # zeroed by the init, through the scaling
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.manual_seed(1)
        F.cross_entropy(model(torch.randn(8, 3, 32, 32)), torch.arange(8)).backward()
        optimizer.step()
        moved.append(biased.bias.detach() - before)
    assert moved[0].abs().sum() > 0
    assert torch.allclose(moved[1], 16 * moved[0], rtol=1e-4, atol=1e-7)
    with pytest.raises(UserError, match=f"{option} must be positive"):
        ConvNet(**CIFAR_NET, **{option: -1.0})


def test_tta_keeps_the_output_shape_and_averages_mirrored_views() -> None:
    model = ConvNet(num_classes=10, input_shape=(3, 32, 32), widths=[8], tta="flip_translate")
    model.eval()
    inputs = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        for mode in ("none", "flip", "flip_translate"):
            assert tta_outputs(model, inputs, mode).shape == (5, 10)
        expected = (model(inputs) + model(inputs.flip(-1))) / 2
        assert torch.allclose(tta_outputs(model, inputs, "flip"), expected)
        assert torch.allclose(model.evaluate(inputs, "train"), model(inputs))
        assert not torch.allclose(model.evaluate(inputs, "test"), model(inputs))


def _cifar(data: Path) -> list[str]:
    return ["--config", str(CONFIGS / "cifar.yaml"), "--data.init_args.data_dir", str(data)]


def _cifar_cli(data: Path, *args: str) -> NetscopeCLI:
    return NetscopeCLI([*_cifar(data), "--trainer.logger", "false",
                        "--trainer.enable_model_summary", "false",
                        "--data.init_args.batch_size", "4", *args], run=False)


def test_cifar_config_whitens_from_its_data_and_steps_the_schedule_per_batch(
        tiny_cifar: Path, tmp_path: Path) -> None:
    cli = _cifar_cli(tiny_cifar, "--trainer.default_root_dir", str(tmp_path / "runs"),
                     "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
                     "--trainer.limit_val_batches", "1")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    expected = ConvNet(**{**CIFAR_NET, "widths": [64, 256, 256]})
    whitening_init(expected, cli.datamodule.sample_inputs(5000))
    stem = cli.model.features[0][0].weight
    assert torch.allclose(stem, expected.features[0][0].weight, atol=1e-5)  # and frozen
    assert cli.trainer.lr_scheduler_configs[0].scheduler.last_epoch == 3  # once per step


def test_a_schedule_shorter_than_the_fit_is_a_clear_error(tiny_cifar: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        run("fit", *_cifar(tiny_cifar), "--data.init_args.batch_size", "2", "--lr_scheduler.init_args.total_steps", "3",
            "--trainer.logger", "false", root=tmp_path / "runs")
    assert "total_steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # max_time alone: the fit's length is unknown
        run("fit", *_cifar(tiny_cifar), "--data.init_args.batch_size", "2", "--trainer.max_epochs", "-1",
            "--trainer.max_time", "00:00:01:00", "--trainer.logger", "false", root=tmp_path / "runs")
    message = capsys.readouterr().err
    assert "no set length" in message and "inf" not in message


def test_cifar_config_fits_and_tests_with_fast_dev_run(tiny_cifar: Path, tmp_path: Path) -> None:
    run_dir = run("fit", *_cifar(tiny_cifar), "--trainer.fast_dev_run", "1",
                  root=tmp_path / "runs")
    summary = metrics(run_dir)
    assert summary["status"] == "completed" and summary["global_step"] == 1
    assert 0.0 <= summary["test/acc"] <= 1.0


class _StemBiasGradients(Callback):
    """Per epoch, whether the stem's bias had a gradient at the optimizer steps."""

    def __init__(self) -> None:
        self.had_gradient: list[bool] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.current_epoch == len(self.had_gradient):
            bias = stored_parameter(pl_module.features[0][0], "bias")
            self.had_gradient.append(bias.grad is not None)


@pytest.mark.parametrize("lr_scale", ["1.0", "64.0"])
def test_stem_bias_trains_for_its_epochs_then_freezes(tiny_cifar: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture,
                                                      lr_scale: str) -> None:
    cli = _cifar_cli(tiny_cifar, "--trainer.default_root_dir", str(tmp_path / "runs"),
                     "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "2",
                     "--trainer.limit_val_batches", "1", "--model.init_args.stem_bias_epochs", "2",
                     "--model.init_args.stem_bias_lr_scale", lr_scale)
    recorder = _StemBiasGradients()
    cli.trainer.callbacks.append(recorder)  # beside the config's diagnostics, which must cope
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert recorder.had_gradient == [True, True, False]
    with pytest.raises(SystemExit):  # a stem with BatchNorm has no bias to freeze
        run("fit", *_cifar(tiny_cifar), "--model.init_args.stem_norm", "true",
            "--model.init_args.stem_bias_epochs", "2", root=tmp_path / "runs")
    assert "stem_bias_epochs needs stem_norm: false" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("fit", *_cifar(tiny_cifar), "--model.init_args.stem_norm", "true",
            "--model.init_args.stem_bias_epochs", "null",
            "--model.init_args.stem_bias_lr_scale", "64", root=tmp_path / "runs")
    assert "stem_bias_lr_scale needs stem_norm: false" in capsys.readouterr().err


class _StepRates(Callback):
    """Each parameter group's rate as the optimizer stepped with it (a step post-hook: Lightning
    runs the closure, and with it ``on_before_optimizer_step``, inside ``optimizer.step``)."""

    def __init__(self) -> None:
        self.by_step: dict[int, dict[str, float]] = {}

    @property
    def rates(self) -> list[dict[str, float]]:
        return [self.by_step[step] for step in sorted(self.by_step)]

    def on_train_start(self, trainer, pl_module) -> None:
        def record(optimizer, args, kwargs) -> None:
            self.by_step[trainer.global_step] = {g.get("name", f"pg{i}"): g["lr"]
                                                 for i, g in enumerate(optimizer.param_groups)}
        trainer.optimizers[0].register_step_post_hook(record)


def test_stem_bias_rate_decays_to_zero_over_its_epochs(tiny_cifar: Path, tmp_path: Path) -> None:
    # airbench94_muon: the whitening bias's rate falls linearly from its full value to 0 over
    # 3 epochs, on its own; the other groups follow the config's LinearLR over the whole fit.
    cli = _cifar_cli(tiny_cifar, "--trainer.default_root_dir", str(tmp_path / "runs"),
                     "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "2",
                     "--trainer.limit_val_batches", "1", "--model.init_args.stem_bias_epochs", "2",
                     "--model.init_args.stem_bias_decay", "true")
    recorder = _StepRates()
    cli.trainer.callbacks.append(recorder)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    stem = [rates["stem_bias"] for rates in recorder.rates]
    assert stem == pytest.approx([stem[0] * f for f in (1, 0.75, 0.5, 0.25, 0, 0)])
    rest = [rates["pg0"] for rates in recorder.rates]
    assert rest == pytest.approx([rest[0] * (1 - step / 6) for step in range(6)])
