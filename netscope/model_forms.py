"""The three forms a ``--model`` can take, built into the LightningModule a trainer fits.

- netscope's own models (``MLP``, ``ConvNet``, ``TorchvisionNet``, ``Supervised``): trained
  with the config's ``optimizer`` and ``lr_scheduler``;
- any ``LightningModule``: it keeps its own ``training_step`` and ``configure_optimizers``
  (a config's optimizer then gets a one-line notice that it was not used; one without
  ``configure_optimizers`` gets the config's);
- any other ``torch.nn.Module``: wrapped in :class:`netscope.models.Supervised`, which trains
  it as a classifier or regressor with netscope's losses, metrics and the config's optimizer.

In all three, an init argument named like a fact of the data (``num_classes``,
``in_channels``, ``input_shape``, ...) is filled from the datamodule (:mod:`netscope.linking`).
"""

import importlib
from types import MethodType
from typing import Any

from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import nn

from netscope.core.errors import UserError
from netscope.linking import FACTS, data_facts, fill_facts
from netscope.models.base import BaseModel
from netscope.models.wrapped import Supervised
from netscope.optim.schedules import build_optimizers, check_choice, class_spec


def import_class(class_path: str) -> type:
    """The class a parsed (so importable) ``class_path`` names."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def build_model(parser: ArgumentParser, config: Namespace, datamodule: Any,
                notices: list[str]) -> LightningModule:
    """The LightningModule to fit, from the parsed ``config`` (``model``, ``optimizer``,
    ``lr_scheduler``) and the built ``datamodule``; notices for the console go to ``notices``."""
    model_config = config.model
    model_class = import_class(model_config.class_path)
    facts = data_facts(datamodule)
    data_name = type(datamodule).__name__ if datamodule is not None else "the data"
    fill_facts(model_config, model_class, facts, data_name)
    built = parser.instantiate(Namespace(model=model_config)).model
    if built is None:
        raise UserError(f"--model {model_config.class_path} built nothing: give a class (or a "
                        f"function that returns a torch.nn.Module).")
    optimizer, scheduler = class_spec(config.get("optimizer")), class_spec(config.get("lr_scheduler"))
    if isinstance(built, BaseModel):
        model = built
    elif isinstance(built, LightningModule):
        return own_lightning_module(built, optimizer, scheduler, notices)
    elif isinstance(built, nn.Module):
        model = wrap(built, model_config, facts)
    else:
        raise UserError(f"--model {model_config.class_path} built a {type(built).__name__}, not a "
                        f"torch.nn.Module; give a LightningModule, or an nn.Module whose forward "
                        f"maps a batch of inputs to outputs.")
    check_choice(model, optimizer, scheduler)
    model.choose_optimizers(optimizer, scheduler)
    return model


def wrap(network: nn.Module, model_config: Namespace, facts: dict[str, Any]) -> Supervised:
    """``network`` in netscope's :class:`Supervised`, told what the data declares (and, when
    the data does not say, the number of classes the network was given)."""
    given = dict(model_config.get("init_args") or {})
    known = {name: facts[name] for name in FACTS if name in facts}
    if "num_classes" not in known and isinstance(given.get("num_classes"), int):
        known["num_classes"] = given["num_classes"]
    return Supervised(network, **known)


def own_lightning_module(model: LightningModule, optimizer: dict | None, scheduler: dict | None,
                         notices: list[str]) -> LightningModule:
    """A user's LightningModule as it is; the config's optimizer only where it has none."""
    name = f"{type(model).__module__}.{type(model).__qualname__}"
    chosen = [spec["class_path"] for spec in (optimizer, scheduler) if spec]
    if is_overridden("configure_optimizers", model, LightningModule):
        if chosen:
            notices.append(f"netscope: note: {name} has its own configure_optimizers; the "
                           f"config's {' and '.join(chosen)} "
                           f"{'was' if len(chosen) == 1 else 'were'} not used.")
        return model
    check_choice(model, optimizer, scheduler)

    def configure_optimizers(self: LightningModule) -> Any:
        return build_optimizers(self.parameters(), optimizer, scheduler, self.trainer, "epoch")

    model.configure_optimizers = MethodType(configure_optimizers, model)
    return model
