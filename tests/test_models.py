"""Models: every init really sets the weights; activations are modules; shapes work."""

import math

import pytest
import torch
from torch import nn

from netscope.models import MLP, ConvNet
from netscope.models.activations import ACTIVATION_TYPES, make_activation
from netscope.models.initialization import INIT_LAYER_TYPES

MNIST_SHAPE = dict(num_classes=10, input_shape=(1, 28, 28))


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, INIT_LAYER_TYPES)]


def test_zeros_gives_all_zero_weights_and_biases():
    model = MLP(**MNIST_SHAPE, init="zeros")
    for module in model.modules():
        if isinstance(module, nn.Linear):
            assert torch.count_nonzero(module.weight) == 0
            assert torch.count_nonzero(module.bias) == 0


def test_orthogonal_rows_are_orthonormal():
    model = MLP(**MNIST_SHAPE, init="orthogonal", activation="identity")
    for weight in weights(model):  # every layer here has fewer outputs than inputs
        product = weight @ weight.T
        assert torch.allclose(product, torch.eye(len(weight)), atol=1e-4)


def test_kaiming_normal_std_matches_he_et_al():
    model = MLP(num_classes=10, input_shape=(1024,), hidden_sizes=[1024, 1024],
                activation="relu", init="kaiming_normal")
    for weight in weights(model):
        fan_in = weight.shape[1]
        assert weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)


def test_init_scale_sets_std_of_normal_and_gain_of_xavier():
    normal = MLP(**MNIST_SHAPE, init="normal", init_scale=0.2)
    assert weights(normal)[0].std().item() == pytest.approx(0.2, rel=0.02)
    xavier = MLP(num_classes=512, input_shape=(512,), hidden_sizes=[512], init="xavier_normal",
                 init_scale=3.0)
    assert weights(xavier)[0].std().item() == pytest.approx(3.0 * math.sqrt(2 / 1024), rel=0.03)


def test_default_keeps_pytorchs_own_initialization():
    torch.manual_seed(0)
    model = MLP(**MNIST_SHAPE, init="default")
    torch.manual_seed(0)
    reference = nn.Linear(784, 128)  # the first layer, drawn from the same RNG state
    assert torch.equal(weights(model)[0], reference.weight)


@pytest.mark.parametrize("init", ["uniform", "xavier_uniform", "kaiming_uniform"])
def test_every_conv_and_linear_layer_is_initialized(init):
    torch.manual_seed(0)
    default = ConvNet(num_classes=10, input_shape=(3, 32, 32), widths=[8, 16], init="default")
    torch.manual_seed(0)
    chosen = ConvNet(num_classes=10, input_shape=(3, 32, 32), widths=[8, 16], init=init)
    pairs = list(zip(weights(default), weights(chosen)))
    assert len(pairs) == 6  # stem conv, 2 blocks x 2 convs, head
    assert all(not torch.equal(a, b) for a, b in pairs)


def test_activations_are_modules_in_the_network():
    model = MLP(**MNIST_SHAPE, activation="tanh")
    activations = [m for m in model.modules() if isinstance(m, ACTIVATION_TYPES)]
    assert len(activations) == 2 and all(isinstance(m, nn.Tanh) for m in activations)
    assert make_activation("leaky_relu", 0.2).negative_slope == 0.2


@pytest.mark.parametrize("model_cls", [MLP, ConvNet])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_output_width_follows_task(model_cls, shape):
    x = torch.randn(2, *shape)
    assert model_cls(num_classes=7, input_shape=shape)(x).shape == (2, 7)
    assert model_cls(num_classes=2, input_shape=shape, task="binary")(x).shape == (2, 1)
