"""A wrong option or value on the command line, as one paragraph with a "did you mean".

jsonargparse reports a misspelled ``--optimizer.lrr`` as a nested list of every type it
tried, after the whole usage; the user needs the option that was wrong and the closest
right one, first.
"""

import difflib
import inspect
import re
import sys
from argparse import ArgumentError
from typing import Any

from jsonargparse import ArgumentParser


def explain_option_error(error: ArgumentError, parser: ArgumentParser, args: Any) -> str:
    """One paragraph: what was wrong, the closest valid option, and where the full list is."""
    message = str(error)
    if args is None:
        args = sys.argv[1:]
    tokens = [str(a) for a in args] if isinstance(args, (list, tuple)) else []
    subcommand = next((t for t in tokens if not t.startswith("-")), None)
    help_hint = f"`python main.py {subcommand or ''} --help`".replace("  ", " ")
    rejected = re.search(r"Problem with given class_path '([\w.]+)':\s*Option '(\w+)' is not accepted",
                         message)
    key = re.search(r'Parser key "([\w.]+)"', message)
    if rejected and key:
        class_path, option = rejected.groups()
        wrong = f"--{key.group(1)}.{option}"
        choices = [f"--{key.group(1)}.{name}" for name in _init_arguments(class_path)]
        return _paragraph(f"{wrong} is not an option of {class_path}", wrong, choices, help_hint)
    unknown = re.search(r"[Uu]nrecognized arguments: (\S+)", message)
    if unknown:
        wrong = unknown.group(1).split("=")[0]
        return _paragraph(f"{wrong} is not an option", wrong, _option_strings(parser, subcommand),
                          help_hint)
    first = " ".join(message.split())
    if len(first) > 400:  # jsonargparse lists every type it tried; the start says what
        first = first[:400].rsplit(" ", 1)[0] + " ..."
    return f"{first}; {help_hint} lists the options and their types."


def _paragraph(what: str, wrong: str, choices: list[str], help_hint: str) -> str:
    close = difflib.get_close_matches(wrong, choices, n=1, cutoff=0.6)
    did_you_mean = f" Did you mean {close[0]}?" if close else ""
    return f"{what}; {help_hint} lists the options.{did_you_mean}"


def _init_arguments(class_path: str) -> list[str]:
    """The ``__init__`` argument names of the class ``class_path`` names."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(__import__(module, fromlist=[name]), name)
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    except (ImportError, AttributeError, TypeError, ValueError):
        return []


def _option_strings(parser: ArgumentParser, subcommand: str | None) -> list[str]:
    """Every ``--option`` the (sub)command's parser knows, nested ones included."""
    parsers = [parser]
    subcommands = getattr(parser, "_subcommands_action", None)
    if subcommands is not None and subcommand in subcommands.choices:
        parsers.append(subcommands.choices[subcommand])
    return [option for p in parsers for action in p._actions for option in action.option_strings
            if option.startswith("--")]
