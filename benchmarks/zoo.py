"""The doctor's fault zoo: broken runs with the finding each must produce, and healthy ones.

One definition for the tests (``tests/test_doctor_zoo.py``) and the benchmark
(``benchmarks/doctor.py``). Every case is a short ``python main.py fit`` on a shipped config
with overrides: a few hundred steps at most, on MNIST or Fashion-MNIST from
``../shared/data`` or on generated data.
"""

from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SHARED_DATA = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Case:
    """One zoo run.

    Attributes:
        name: short identifier.
        args: the ``main`` arguments after ``fit`` (``{data}`` is the shared data folder,
            ``{cifar}`` a generated CIFAR-10 folder).
        code: the finding it must produce (``None``: a healthy run, which must produce no
            warning or error).
        where: the layer that finding must name (a finding naming one of its parameters,
            ``features.0.weight`` for ``features.0``, names it too).
        data: the shared data set it needs (``None``: generated data).
        quick: part of the default test suite (seconds, not minutes).
    """

    name: str
    args: tuple[str, ...]
    code: str | None = None
    where: str | None = None
    data: str | None = "mnist"
    quick: bool = False
    note: str = field(default="", compare=False)


def mnist(*args: str, steps: int = 200, every: int = 20) -> tuple[str, ...]:
    """``configs/mnist.yaml`` on the shared MNIST, ``steps`` training batches, no logger."""
    return ("--config", str(CONFIGS / "mnist.yaml"),
            "--data.init_args.data_dir", "{data}/mnist", *SHORT,
            "--trainer.limit_train_batches", str(steps), "--trainer.log_every_n_steps", str(every),
            *args)


SHORT = ("--trainer.logger", "false", "--test_after_fit", "false", "--trainer.max_epochs", "1",
         "--trainer.limit_val_batches", "2", "--trainer.enable_model_summary", "false")
DEEP = ("--model.init_args.hidden_sizes", "[128, 128, 128, 128, 128, 128, 128, 128]")
SIGMOID4 = ("--model.init_args.hidden_sizes", "[64, 64, 64, 64]")

BROKEN: tuple[Case, ...] = (
    Case("small_init", mnist(*DEEP, "--model.init_args.init", "normal",
                             "--model.init_args.init_scale", "0.01", steps=20),
         "vanishing_gradients", "features.1", quick=True,
         note="deep ReLU MLP, N(0, 0.01²) weights: the signal shrinks ~12x per layer"),
    Case("large_init", mnist(*DEEP, "--model.init_args.init", "normal",
                             "--model.init_args.init_scale", "0.5", steps=20),
         "exploding_gradients", "features.1", quick=True,
         note="deep ReLU MLP, N(0, 0.5²) weights: the signal grows ~4x per layer"),
    Case("zero_init", mnist("--model.init_args.init", "zeros", steps=20),
         "symmetry", "features.0", note="by default tested on XOR in tests/test_doctor.py"),
    Case("deep_sigmoid", mnist(*DEEP, "--model.init_args.activation", "sigmoid", steps=20),
         "vanishing_gradients", "features.1",
         note="sigmoid' <= 1/4: the gradient shrinks at least 4x per layer"),
    Case("sigmoid_saturated", mnist(*SIGMOID4, "--model.init_args.activation", "sigmoid",
                                    "--model.init_args.init", "normal",
                                    "--model.init_args.init_scale", "1.0", steps=20),
         "saturated_units", "features.1", quick=True),
    Case("tanh_saturated", mnist(*SIGMOID4, "--model.init_args.activation", "tanh",
                                 "--model.init_args.init", "normal",
                                 "--model.init_args.init_scale", "1.0", steps=20),
         "saturated_units", "features.1"),
    Case("lr_x100", mnist("--optimizer.lr", "0.3", steps=60), "lr_too_high", "model"),
    Case("lr_div_1e4", mnist("--optimizer.lr", "3e-7", steps=100), "lr_too_low", "model",
         quick=True),
    Case("head_x100", mnist("--model", "benchmarks.zoo_models.ScaledHeadMLP",
                            "--model.init_args.head_scale", "100", steps=20),
         "bad_initial_loss", "head", quick=True),
    Case("dead_relu", mnist("--model", "benchmarks.zoo_models.ShiftedBiasMLP",
                            "--model.init_args.hidden_bias", "-5", steps=20),
         "dead_units", "features.1"),
    Case("overfitting", mnist("--trainer.max_epochs", "25", "--trainer.limit_val_batches", "1",
                              "--optimizer", "torch.optim.Adam", "--optimizer.lr", "0.003",
                              steps=2, every=1),
         "overfitting", "model", note="128 training images, 25 epochs"),
    Case("diverged", mnist("--optimizer.lr", "1000000", steps=40), "diverged", "features.0",
         note="the first layer's output overflows first"),
    Case("fashion_lr_x1000_adam", (
        "--config", str(CONFIGS / "fashion_mnist.yaml"),
        "--data.init_args.data_dir", "{data}/fashion-mnist", *SHORT,
        "--trainer.limit_train_batches", "200", "--trainer.log_every_n_steps", "20",
        "--optimizer", "torch.optim.Adam", "--optimizer.lr", "1.0"),
         "lr_too_high", "model", data="fashion-mnist"),
)

HEALTHY: tuple[Case, ...] = (
    Case("xor", ("--config", str(CONFIGS / "xor.yaml"), "--test_after_fit", "false",
                 "--trainer.max_epochs", "8"), data=None),
    Case("mnist", mnist(steps=300), quick=False),
    Case("mnist_convnet", mnist("--model", "netscope.models.ConvNet", steps=100)),
    Case("mnist_adam", mnist("--optimizer", "torch.optim.Adam", "--optimizer.lr", "0.001")),
    Case("fashion_mnist", ("--config", str(CONFIGS / "fashion_mnist.yaml"),
                           "--data.init_args.data_dir", "{data}/fashion-mnist", *SHORT,
                           "--trainer.limit_train_batches", "200",
                           "--trainer.log_every_n_steps", "20"), data="fashion-mnist"),
    # Random images (tests/conftest.py's tiny_cifar): nothing to learn, so only the
    # pre-flight and three logged steps are judged.
    Case("cifar_tiny", ("--config", str(CONFIGS / "cifar.yaml"),
                        "--data.init_args.data_dir", "{cifar}", "--data.init_args.batch_size", "8",
                        "--trainer.precision", "32", *SHORT,
                        "--trainer.limit_train_batches", "3", "--trainer.log_every_n_steps", "1"),
         data=None),
    # fp32: the config's bf16-mixed is emulated, about 20x slower, on a CPU without
    # AVX512-BF16 (netscope's console says so); precision is not what is judged here.
    Case("satellite", ("--config", str(CONFIGS / "satellite.yaml"),
                       "--data.init_args.data_dir", "{data}/satellite", *SHORT,
                       "--trainer.precision", "32-true",
                       "--trainer.limit_train_batches", "20", "--trainer.log_every_n_steps", "5"),
         data="satellite"),
)

ZOO = BROKEN + HEALTHY


def arguments(case: Case, data: Path = SHARED_DATA, cifar: Path | None = None) -> list[str]:
    """The case's ``main`` arguments, with the data folders filled in."""
    return ["fit", *(a.replace("{data}", str(data)).replace("{cifar}", str(cifar))
                     for a in case.args)]
