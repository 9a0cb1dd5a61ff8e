"""What ``python main.py --help`` and ``python main.py <command> --help`` say first.

LightningCLI's parser lists every option of the Trainer, the model, the data, the optimizer
and the schedule: about 1400 lines for ``fit``. A newcomer needs a dozen of them and the way
to find the rest, so each command's help starts with those (its description), the usage
line is one line, and the full list follows. The main help lists the commands, one line
each (the first line of each ``NetscopeTrainer`` method's docstring), and the first commands
of the README's tour.
"""

import argparse
import inspect
import textwrap
from typing import Any

from jsonargparse import DefaultHelpFormatter

DESCRIPTION = """\
netscope: train neural networks and see inside them while they train (per-layer
gradient norms, activation statistics, histograms), with a doctor that says in
words what is wrong. Every value of a config is an option; models, data sets
and optimizers are chosen by class name."""

FIRST_COMMANDS = """\
first commands (README.md, "A five-minute tour"):
  python main.py fit --config configs/mnist.yaml --trainer.max_epochs 3
  python main.py fit --config configs/mnist.yaml --model ConvNet
  python main.py fit --config configs/mnist.yaml --optimizer Adagrad
  python main.py check --config configs/mnist.yaml     (the doctor alone)
  python main.py fit --help                            (the options of fit)
  offline: add --data.init_args.data_dir ../shared/data/mnist
each command makes a new directory under runs/; to read one back later:
  python -m figures runs/<run>                         (its figures, redrawn)
  python -m doctor runs/<run>                          (its findings)"""

#: The options a newcomer changes first, for every command (each builds a model and data).
COMMON_OPTIONS = """\
the options to start with (every value of a config is one):
  --config configs/mnist.yaml       a config: configs/*.yaml or RUN/config.yaml
  --model ConvNet                   MLP, ConvNet, TorchvisionNet or mypkg.MyNet
  --model.init_args.activation tanh one of the model's arguments
  --data.init_args.data_dir DIR     where the data set is
  --data.init_args.batch_size 128   the training batch size
{extra}
to see more:
  --print_config                    print the resolved config and stop
  --model.help ConvNet              a model's arguments; also --data.help
                                    MNISTDataModule, --optimizer.help Adam
all options follow."""

TRAINING_OPTIONS = """\
  --optimizer torch.optim.Adam      the optimizer (any torch.optim class)
  --optimizer.lr 0.01               one of its arguments
  --trainer.max_epochs 3            any Lightning Trainer argument
  --run_name NAME                   names the run directory and the W&B run"""

CHECKPOINT = "  --ckpt_path RUN/checkpoints/last.ckpt\n                                    the checkpoint"
#: A run's config and checkpoint, as the evaluation commands take them.
FROM_RUN = "--config RUN/config.yaml --ckpt_path RUN/checkpoints/last.ckpt"

#: Per command: an example after the summary line, and the options beyond the common ones.
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("python main.py fit --config configs/mnist.yaml --trainer.max_epochs 3",
            TRAINING_OPTIONS + "\n  --ckpt_path RUN/checkpoints/last.ckpt\n"
            "                                    resume that run (RUN: runs/<run>)"),
    "validate": (f"python main.py validate {FROM_RUN}", CHECKPOINT),
    "test": (f"python main.py test {FROM_RUN}", CHECKPOINT),
    "predict": (f"python main.py predict {FROM_RUN}", CHECKPOINT
                + "\n  --data.init_args.predict_dir DIR  new images (image folder data sets)"),
    "check": ("python main.py check --config configs/mnist.yaml --model.init_args.init zeros",
              TRAINING_OPTIONS + "\n  --fail_on warning                 exit 1 on a warning too"),
    "export": (f"python main.py export {FROM_RUN}", CHECKPOINT),
    "serve": ("python main.py serve --config RUN/config.yaml --onnx RUN/model.onnx",
              CHECKPOINT + "\n  --onnx RUN/model.onnx             or a model export wrote"
              "\n  --port 8000                       the TCP port"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """jsonargparse's help, with descriptions and epilogs printed as written: their
    examples stay one per line (argparse would re-wrap them into one paragraph)."""


def summary_line(trainer_class: type, command: str) -> str:
    """The first line of the command's ``NetscopeTrainer`` method docstring (its line in
    ``--help``, as LightningCLI takes it)."""
    return (inspect.getdoc(getattr(trainer_class, command)) or "").split("\n\n")[0]


def command_description(trainer_class: type, command: str) -> str:
    """What ``python main.py <command> --help`` says before the list of options."""
    example, extra = COMMANDS.get(command, ("", ""))
    head = summary_line(trainer_class, command)
    if example:  # folded at 78 columns, continuation lines indented
        lines = textwrap.wrap(example, 76, subsequent_indent="      ", break_on_hyphens=False)
        head += "\n\n  " + "\n  ".join(lines)
    return head + "\n\n" + COMMON_OPTIONS.replace("{extra}", extra)


def with_help(parser_kwargs: dict[str, Any], trainer_class: type) -> dict[str, Any]:
    """``parser_kwargs`` for ``LightningCLI`` with netscope's help texts added: the main
    parser's description and first commands, and each command's usage line and
    description (``parser_kwargs`` has one entry per command, as LightningCLI takes them)."""
    kwargs = {**parser_kwargs, "description": DESCRIPTION, "epilog": FIRST_COMMANDS,
              "formatter_class": HelpFormatter}
    for command in COMMANDS:
        kwargs[command] = {
            **parser_kwargs.get(command, {}),
            "description": command_description(trainer_class, command),
            "usage": "%(prog)s [--config FILE] [--OPTION VALUE ...]",
            "formatter_class": HelpFormatter,
        }
    return kwargs
