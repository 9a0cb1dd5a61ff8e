"""``netscope.optim.MuonSGD``: Muon on the hidden weights, SGD on the rest (the first layer,
the head, biases and norms), and what the doctor makes of it."""

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from netscope.optim.muon import MuonSGD, orthogonalize
from tests.helpers import CONFIGS, FAST, run
from tests.test_bad_input import fails

#: The shipped CIFAR-10 recipe (Muon on the filters), measured in docs/performance.md.
RECIPE = CONFIGS / "cifar.yaml"


def test_orthogonalize_brings_every_singular_value_near_one() -> None:
    torch.manual_seed(0)
    for shape in [(8, 27), (64, 200), (200, 64)]:
        left, _ = torch.linalg.qr(torch.randn(shape[0], min(shape)))
        right, _ = torch.linalg.qr(torch.randn(shape[1], min(shape)))
        spread = torch.logspace(0, -1, min(shape))  # singular values from 1 down to 0.1
        result = orthogonalize(left @ torch.diag(spread) @ right.T)
        assert result.shape == shape
        values = torch.linalg.svdvals(result)
        assert values.min() > 0.4 and values.max() < 1.3, values


def _net() -> nn.Module:
    """A first convolution, a hidden one (index 3, Muon's) and a head."""
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))


def _step(net: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    torch.manual_seed(seed)
    optimizer.zero_grad()
    outputs, targets = net(torch.randn(16, 3, 8, 8)), torch.randint(0, 4, (16,))
    nn.functional.cross_entropy(outputs, targets).backward()
    optimizer.step()


def test_the_hidden_filters_move_by_muon_lr_and_the_rest_exactly_as_under_sgd() -> None:
    torch.manual_seed(0)
    net = _net()
    reference = copy.deepcopy(net)
    settings = {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}
    muon = MuonSGD(net.parameters(), muon_lr=0.05, **settings)
    sgd = torch.optim.SGD(reference.parameters(), **settings)
    assert [len(g["params"]) for g in muon.param_groups] == [7, 1]  # hidden filters last, alone
    assert muon.param_groups[1]["params"][0] is net[3].weight
    for seed in range(3):
        filters = net[3].weight.detach().clone()
        _step(net, muon, seed)
        _step(reference, sgd, seed)
        normalized = filters * (8 ** 0.5 / filters.norm())  # norm sqrt(out_channels)
        moved = (net[3].weight.detach() - normalized).norm() / normalized.norm()
        assert 0.05 * 0.4 < moved < 0.05 * 1.3, moved
        reference[3].weight.data.copy_(net[3].weight.data)  # follow the filters, check the rest
        for (name, mine), theirs in zip(net.named_parameters(), reference.parameters()):
            if name != "3.weight":
                torch.testing.assert_close(mine, theirs, msg=name)


def test_its_state_survives_a_checkpoint() -> None:
    net = _net()
    optimizer = MuonSGD(net.parameters(), lr=0.1, momentum=0.9)
    _step(net, optimizer, 0)
    restored = MuonSGD(copy.deepcopy(net).parameters(), lr=0.1, momentum=0.9)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.param_groups[-1]["orthogonalize"] and restored.param_groups[-1]["lr"] == 0.24
    buffers = [s["momentum_buffer"] for s in optimizer.state.values()]
    assert len(buffers) == 8  # every parameter, filters included
    for before, after in zip(buffers, (s["momentum_buffer"] for s in restored.state.values())):
        torch.testing.assert_close(before, after)


def test_an_mlps_hidden_matrices_take_muon_and_its_first_layer_and_head_sgd() -> None:
    mlp = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                        nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = MuonSGD(mlp.parameters(), lr=0.1)
    assert optimizer.param_groups[-1]["params"] == [mlp[2].weight, mlp[4].weight]
    assert not optimizer.param_groups[0]["orthogonalize"]
    # A group may say otherwise: here the head joins Muon, the first layer's group stays out.
    groups = [{"params": list(mlp[0].parameters()), "muon": False},
              {"params": [*mlp[2].parameters(), *mlp[4].parameters()]},
              {"params": [mlp[6].weight], "muon": True}, {"params": [mlp[6].bias]}]
    chosen = MuonSGD(groups, lr=0.1).param_groups[-1]["params"]
    assert chosen == [mlp[2].weight, mlp[4].weight, mlp[6].weight]
    assert all("muon" not in group for group in MuonSGD(groups, lr=0.1).param_groups)


MUON = ["--optimizer", "netscope.optim.MuonSGD", "--optimizer.init_args.lr", "0.05",
        "--optimizer.init_args.momentum", "0.85", "--optimizer.init_args.nesterov", "true",
        "--lr_scheduler", "torch.optim.lr_scheduler.LinearLR",
        "--lr_scheduler.init_args.end_factor", "0.0",
        "--lr_scheduler.init_args.total_iters", "null"]


def test_a_muon_fit_gets_no_learning_rate_verdict_from_its_filters_or_head_alone(
        tiny_cifar: Path, tmp_path: Path) -> None:
    # The measured Muon recipe, whose head alone moves by over 10% of its size a step.
    run_dir = run("fit", "--config", str(RECIPE), *FAST,
                  "--data.init_args.data_dir", str(tiny_cifar), "--data.init_args.batch_size", "4",
                  "--trainer.precision", "32-true", "--trainer.log_every_n_steps", "1",
                  root=tmp_path / "runs")
    preflight = json.loads((run_dir / "preflight.json").read_text())
    filters = [w["name"] for w in preflight["weights"] if w["name"].endswith("0.weight")
               or w["name"].endswith("4.weight")]
    assert filters and set(preflight["context"]["fixed_step"]) == set(filters)
    # The filters move by about muon_lr (0.24) of their size each step, by design; 0.24 is far
    # above the gradient steps' healthy 1e-3, which the doctor used to call "lr too high".
    ratios = {w["name"]: w["update_ratio"] for w in preflight["weights"]}
    assert min(ratios[name] for name in filters) > 0.05, ratios
    assert ratios["head.3.weight"] > 0.1, ratios  # one layer is no median: no lr verdict
    findings = json.loads((run_dir / "findings.json").read_text())
    assert not [f for f in findings if f["code"] == "lr_too_high"], findings


def test_muon_on_a_model_without_hidden_weights_is_a_clear_error(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    line, _ = fails(["fit", "--config", str(CONFIGS / "xor.yaml"), *FAST, *MUON],
                    tmp_path / "runs", capsys)
    # XOR's 2-4-1 network has a first layer and a head, nothing between them.
    assert "MuonSGD orthogonalizes hidden weight matrices" in line, line


def test_a_negative_muon_lr_is_a_clear_error(tiny_cifar: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    line, _ = fails(["fit", "--config", str(RECIPE), *FAST, "--data.init_args.data_dir",
                     str(tiny_cifar), "--optimizer.init_args.muon_lr", "-0.24"],
                    tmp_path / "runs", capsys)
    assert "MuonSGD" in line and "muon_lr -0.24" in line, line
