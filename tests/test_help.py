"""Help a newcomer can read: ``--help`` lists the commands one line each with the first
commands of the tour, a command's help starts with the options to change first, and every
argument of netscope's models and datamodules has a description."""

import inspect
import re

import pytest
from jsonargparse import ArgumentParser

import netscope.datamodules
import netscope.models
from main import main
from netscope.cli import NetscopeCLI
from netscope.core.compat import parser_actions
from netscope.help_text import summary_line
from netscope.trainer import NetscopeTrainer

COMMANDS = ["fit", "validate", "test", "predict", "check", "export", "serve"]


def help_text(capsys: pytest.CaptureFixture, *args: str) -> str:
    """What ``python main.py <args> --help`` prints (it exits 0)."""
    with pytest.raises(SystemExit) as stop:
        main([*args])
    assert stop.value.code in (0, None)
    return capsys.readouterr().out


def test_main_help_lists_each_command_on_one_line_with_the_first_commands(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # a plain terminal's width
    text = help_text(capsys, "--help")
    assert "Lightning Trainer command line tool" not in text
    assert list(NetscopeCLI.subcommands()) == COMMANDS
    for command in COMMANDS:
        line = summary_line(NetscopeTrainer, command)
        assert line.endswith(".") and "\n" not in line, line  # one whole sentence
        # on the command's own line, not wrapped onto the next one
        assert re.search(rf"^ +{command} +{re.escape(line)}$", text, re.MULTILINE), (command, line)
    for example in ("python main.py fit --config configs/mnist.yaml --trainer.max_epochs 3",
                    "python main.py fit --config configs/mnist.yaml --model ConvNet",
                    "python main.py check --config configs/mnist.yaml",
                    "python main.py fit --help"):
        assert example in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.parametrize("command", COMMANDS)
def test_a_commands_help_starts_with_the_options_to_change_first(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    text = help_text(capsys, command, "--help")
    head = text[:text.index("all options follow.")]
    lines = head.splitlines()
    assert re.fullmatch(rf"usage: \S+ \[options\] {command} \[--config FILE\] \[--OPTION VALUE \.\.\.\]",
                        lines[0]), lines[0]  # one line, not the 67 lines of every option
    assert lines[2] == summary_line(NetscopeTrainer, command)
    assert len(lines) < 40 and max(len(line) for line in lines) <= 80
    for option in ("--config configs/mnist.yaml", "--model ConvNet", "--data.init_args.data_dir",
                   "--print_config", "--model.help ConvNet"):
        assert option in head
    assert ("--optimizer.lr" in head) == (command in ("fit", "check"))
    assert ("--ckpt_path" in head) == (command != "check")
    assert len(text.splitlines()) > 1000  # and then every option, as before


def public_classes() -> list[type]:
    """Every class netscope.models and netscope.datamodules export."""
    return [getattr(module, name) for module in (netscope.models, netscope.datamodules)
            for name in module.__all__ if inspect.isclass(getattr(module, name))]


@pytest.mark.parametrize("cls", public_classes(), ids=lambda cls: cls.__name__)
def test_every_model_and_datamodule_argument_has_a_description(cls):
    """As jsonargparse shows them (``--model.help MLP``), from the Google-style ``Args:``
    of the class's ``__init__`` or of the class and its bases."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "x", fail_untyped=False)
    arguments = {action.dest.removeprefix("x."): action.help for action in parser_actions(parser)
                 if action.dest.startswith("x.") and not action.dest.endswith(".help")}
    signature = inspect.signature(cls.__init__).parameters
    named = [name for name, p in signature.items() if name != "self" and p.kind in
             (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    assert set(named) <= set(arguments)  # every own argument is there (and the base's via kwargs)
    missing = sorted(name for name, description in arguments.items() if not description)
    assert not missing, f"{cls.__name__}: no description for {missing}"
    pointers = sorted(name for name, description in arguments.items()
                      if description.lower().startswith("see "))
    assert not pointers, f"{cls.__name__}: a pointer, not a description, for {pointers}"


def test_the_mlp_arguments_the_issue_named_are_described(capsys):
    text = help_text(capsys, "fit", "--model.help", "MLP")
    text = text[text.index("Help for --model.help"):]  # the options, after the usage lines
    for option, words in (("hidden_sizes", "width of each hidden layer"),
                          ("dropout", "dropout probability"),
                          ("batch_norm", "BatchNorm1d between each hidden Linear")):
        block = text[text.index(f"--model.{option}"):]
        assert words in " ".join(block.split()[:40]), option
