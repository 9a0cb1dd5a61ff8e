"""A wrong option or value on the command line, as one paragraph that names the fix.

jsonargparse reports a wrong value as a nested list of every type it tried, after the whole
usage. The user needs the option that was wrong, what it takes (the valid choices, the
expected type), and the closest right one, first:

- an unknown option (``--optimizer.lrr``): the closest valid one;
- an unknown class (``--model ResNet50``): the classes that option takes, and a "did you mean";
- a value of the wrong type (``--trainer.max_epochs three``): the option and its type;
- a choice that is not one (``--model.init_args.activation nope``): the valid choices;
- a config file that is not valid YAML: the file and the line.
"""

import difflib
import importlib
import inspect
import re
import sys
from argparse import ArgumentError
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser

from netscope.core.compat import parser_actions, subcommand_parsers

#: Where the classes a class-valued option takes live, to list them by name.
CLASS_HOMES: dict[str, tuple[str, str, str]] = {
    # option: (module, base class path, what they are)
    "model": ("netscope.models", "torch.nn.Module", "netscope's models"),
    "data": ("netscope.datamodules", "lightning.pytorch.LightningDataModule", "netscope's datamodules"),
    "optimizer": ("torch.optim", "torch.optim.Optimizer", "torch.optim's optimizers"),
    "lr_scheduler": ("torch.optim.lr_scheduler", "torch.optim.lr_scheduler.LRScheduler",
                     "torch.optim.lr_scheduler's schedulers"),
    "trainer.logger": ("lightning.pytorch.loggers", "lightning.pytorch.loggers.Logger",
                       "Lightning's loggers"),
    "trainer.callbacks": ("netscope.callbacks", "lightning.pytorch.Callback", "netscope's callbacks"),
}

#: Base classes exported beside the classes to use: not choices.
_BASES = ("Diagnostic",)

_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false",
               "str": "a string", "NoneType": "null"}


def explain_option_error(error: ArgumentError, parser: ArgumentParser, args: Any) -> str:
    """One paragraph: what was wrong, what the option takes, the closest valid one."""
    message = str(error)
    tokens = [str(a) for a in (sys.argv[1:] if args is None else args)] \
        if args is None or isinstance(args, (list, tuple)) else []
    subcommand = next((t for t in tokens if not t.startswith("-")), None)
    help_hint = f"`python main.py {subcommand or ''} --help`".replace("  ", " ")
    for explain in (_yaml_error, _nested_union_value, _not_accepted, _unrecognized,
                    _unknown_class, _required, _bad_value):
        paragraph = explain(message, tokens, parser, subcommand, help_hint)
        if paragraph:
            return paragraph
    first = " ".join(message.split())
    if len(first) > 400:  # jsonargparse lists every type it tried; the start says what
        first = first[:400].rsplit(" ", 1)[0] + " ..."
    return f"{first}; {help_hint} lists the options and their types."


def _yaml_error(message: str, tokens: list[str], *_: Any) -> str | None:
    """A ``--config`` file that is not valid YAML: which file, which line."""
    if "Problems parsing config" not in message:
        return None
    import yaml

    for index, token in enumerate(tokens):
        if token == "--config" and index + 1 < len(tokens):
            path = Path(tokens[index + 1])
            try:
                yaml.safe_load(path.read_text())
            except yaml.YAMLError as problem:
                mark = getattr(problem, "problem_mark", None)
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                what = getattr(problem, "problem", None) or str(problem).splitlines()[0]
                return f"The config file {path} is not valid YAML{where}: {what}. Fix it there."
            except OSError:
                continue
    return None


def _nested_union_value(message: str, tokens: list[str], *_: Any) -> str | None:
    """``--trainer.callbacks.every_n_steps abc``: an option of the chosen class given a value
    of none of its types (``int | None``, or ``float``). jsonargparse then also reports that
    the base class (``lightning.Callback``) does not take the option, which is beside the
    point: the class that does take it comes first in its message."""
    outer = re.search(r'Parser key "([\w.]+)"', message)
    nested = (re.search(r"Problem with given class_path '([\w.]+)':\s*Parser key \"(\w+)\":\s*"
                        r"Does not validate against any of the Union subtypes(.*?)Given value: (\S+)",
                        message, re.S)
              or re.search(r"Problem with given class_path '([\w.]+)':\s*Parser key \"(\w+)\":\s*"
                           r"(Expected a <class '[\w.]+'>)\. Got value: (\S+)", message))
    if not (outer and nested):
        return None
    class_path, option, body, value = nested.groups()
    kinds = [_expected(f"a {e}") for e in
             re.findall(r"Expected a (<class '[\w.]+'>|typing\.Literal\[.*?\])", body)]
    if not kinds:
        return None
    typed = next((t.split("=")[0] for t in tokens if t.split("=")[0].endswith(f".{option}")),
                 f"--{outer.group(1)}.{option}")
    owner = class_path.rsplit(".", 1)[-1]
    return f"{typed} {value}: {owner}'s {option} takes {' or '.join(dict.fromkeys(kinds))}."


def _not_accepted(message: str, tokens: list[str], parser: ArgumentParser, subcommand: str | None,
                  help_hint: str) -> str | None:
    """``--optimizer.lrr``: an option the chosen class does not take."""
    rejected = re.search(r"Problem with given class_path '([\w.]+)':\s*Option '(\w+)' is not accepted",
                         message)
    key = re.search(r'Parser key "([\w.]+)"', message)
    if not (rejected and key):
        return None
    class_path, option = rejected.groups()
    wrong = f"--{key.group(1)}.{option}"
    choices = [f"--{key.group(1)}.{name}" for name in _init_arguments(class_path)]
    return _paragraph(f"{wrong} is not an option of {class_path}", wrong, choices, help_hint)


def _unrecognized(message: str, tokens: list[str], parser: ArgumentParser, subcommand: str | None,
                  help_hint: str) -> str | None:
    unknown = re.search(r"[Uu]nrecognized arguments: (\S+)", message)
    if not unknown:
        return None
    wrong = unknown.group(1).split("=")[0]
    return _paragraph(f"{wrong} is not an option", wrong, _option_strings(parser, subcommand),
                      help_hint)


def _unknown_class(message: str, tokens: list[str], *_: Any) -> str | None:
    """``--model ResNet50``: a class name that names no class the option takes."""
    found = re.search(r'Parser key "([\w.]+)":\s*- Expected a path but (\S+) either not '
                      r'accessible or invalid', message)
    if not found:
        return None
    key, name = found.groups()
    home = CLASS_HOMES.get(key)
    why = _import_problem(name)
    if why:
        return (f"--{key} {name}: {why}. Run from the folder that holds your module, or put it "
                f"on PYTHONPATH (the installed netscope command imports from the current folder).")
    if home is None:
        return f"--{key} {name} names no class that --{key} takes; give a class name or its dotted path."
    names = _class_names(home[0], home[1]) + (["netscope.optim.MuonSGD"] if key == "optimizer" else [])
    close = difflib.get_close_matches(name.rsplit(".", 1)[-1], names, n=1, cutoff=0.5)
    did_you_mean = f" Did you mean {close[0]}?" if close else ""
    own = " or the dotted path of your own class (mynet.MyNet)" if key in ("model", "data") else ""
    return (f"--{key} {name} is not a class --{key} knows. It takes {home[2]}: "
            f"{', '.join(names)};{own or ' or a dotted import path'}.{did_you_mean}")


def _required(message: str, tokens: list[str], *_: Any) -> str | None:
    """``--model torch.nn.Linear`` without the arguments it cannot do without."""
    found = re.search(r"Problem with given class_path '([\w.]+)':\s*the following arguments are "
                      r"required: ([\w, ]+)", message)
    key = re.search(r'Parser key "([\w.]+)"', message)
    if not (found and key):
        return None
    class_path, names = found.group(1), [n.strip() for n in found.group(2).split(",")]
    options = " ".join(f"--{key.group(1)}.init_args.{name} ..." for name in names)
    return (f"--{key.group(1)} {class_path} needs {', '.join(names)}, which have no default: "
            f"give them ({options}) or in the config under {key.group(1)}.init_args.")


def _bad_value(message: str, tokens: list[str], *_: Any) -> str | None:
    """A value of the wrong type, or a choice that is not one, for a plain or nested option."""
    outer = re.search(r'Parser key "([\w.]+)"', message)
    if not outer:
        return None
    key = outer.group(1)
    nested = re.search(r"Problem with given class_path '([\w.]+)':\s*Parser key \"([\w.]+)\":\s*"
                       r"(Expected .*?)(?:\. Got value: (.*))?$", message, re.M)
    if nested:
        class_path, option, expected, value = nested.groups()
        name = f"--{key}.init_args.{option}" if key in CLASS_HOMES else f"--{key}.{option}"
        owner = class_path.rsplit(".", 1)[-1]
        return f"{name} {value or ''}: {owner}'s {option} takes {_expected(expected)}.".replace(" :", ":")
    value = re.search(r"Given value: (.*)$", message, re.M)
    expected = re.findall(r"- Expected a (<class '[\w.]+'>|typing\.Literal\[.*?\])", message)
    if not expected or not value:
        return None
    kinds = [_expected(f"a {e}") for e in expected]
    return f"--{key} {value.group(1)}: --{key} takes {' or '.join(dict.fromkeys(kinds))}."


def _expected(text: str) -> str:
    """``Expected a <class 'int'>`` -> ``a whole number``; a Literal -> its choices."""
    literal = re.search(r"Literal\[(.*?)\]", text)
    if literal:
        choices = [c.strip().strip("'\"") for c in literal.group(1).split(",")]
        return "one of " + ", ".join(choices)
    kind = re.search(r"<class '([\w.]+)'>", text)
    if kind:
        name = kind.group(1).rsplit(".", 1)[-1]
        return _TYPE_WORDS.get(name, f"a {name}")
    return text.removeprefix("Expected ").strip()


def _paragraph(what: str, wrong: str, choices: list[str], help_hint: str) -> str:
    close = difflib.get_close_matches(wrong, choices, n=1, cutoff=0.6)
    did_you_mean = f" Did you mean {close[0]}?" if close else ""
    return f"{what}; {help_hint} lists the options.{did_you_mean}"


def _import_problem(class_path: str) -> str | None:
    """Why a dotted ``class_path`` cannot be imported (its module's own error), if it is one."""
    module, _, name = class_path.rpartition(".")
    if not module:
        return None
    try:
        imported = importlib.import_module(module)
    except Exception as error:  # the user's module failed to import: say how
        return f"cannot import {module} ({type(error).__name__}: {error})"
    if not hasattr(imported, name):
        return f"{module} has no {name}"
    return None


def _class_names(module_name: str, base_path: str) -> list[str]:
    """The public classes of ``module_name`` that subclass ``base_path``, by name."""
    base_module, _, base_name = base_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        base = getattr(importlib.import_module(base_module), base_name)
    except (ImportError, AttributeError):
        return []
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    return sorted(n for n in names if inspect.isclass(getattr(module, n, None))
                  and issubclass(getattr(module, n), base) and getattr(module, n) is not base
                  and not n.startswith("Base") and n not in _BASES)


def _init_arguments(class_path: str) -> list[str]:
    """The ``__init__`` argument names of the class ``class_path`` names."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    except (ImportError, AttributeError, TypeError, ValueError):
        return []


def _option_strings(parser: ArgumentParser, subcommand: str | None) -> list[str]:
    """Every ``--option`` the (sub)command's parser knows, nested ones included."""
    parsers = [parser]
    subparsers = subcommand_parsers(parser)
    if subcommand in subparsers:
        parsers.append(subparsers[subcommand])
    return [option for p in parsers for action in parser_actions(p)
            for option in action.option_strings if option.startswith("--")]
