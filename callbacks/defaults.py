"""``default_callbacks()``: netscope's callbacks for any Lightning script.

``Trainer(callbacks=default_callbacks())`` gives a plain Lightning script what every
``python main.py`` command has: the diagnostics, the doctor, the figures, the reports and
``metrics.json`` (the list ``netscope/defaults.yaml`` names, one file for both). The run's
files go to the trainer's log directory (``lightning_logs/version_N`` by default).
"""

from importlib.resources import files

import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import Callback

#: The list of callbacks, shared with the command line (read before any --config file).
DEFAULTS = files("netscope") / "defaults.yaml"


def default_callbacks() -> list[Callback]:
    """A new instance of each callback ``netscope/defaults.yaml`` lists, configured as there."""
    entries = yaml.safe_load(DEFAULTS.read_text())["trainer"]["callbacks"]
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--callbacks", type=list[Callback])
    return parser.instantiate(parser.parse_object({"callbacks": entries})).callbacks
