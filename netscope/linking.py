"""What the datamodule knows reaches the model: nobody types it twice.

A datamodule declares facts about its data (``num_classes``, ``input_shape``, ``task``,
``class_names``: netscope's datamodules all do; a user's may, as attributes). They fill the
model's init arguments of those names, and a network's ``num_classes``, ``in_channels``
(the input's first dimension) or ``input_shape``, before the model is built. A value the
user set that disagrees with the data is an error that says where the value comes from;
facts the datamodule does not declare are the user's to type, once, on the model.

This replaces jsonargparse's argument links (``link_arguments``), which need the target
argument to exist on every model class, while any ``nn.Module`` may be the model here.
"""

import inspect
from typing import Any

from jsonargparse import Namespace

from netscope.core.errors import UserError

#: The facts, by the model argument they fill.
FACTS = ("num_classes", "input_shape", "task", "class_names")


def data_facts(datamodule: Any) -> dict[str, Any]:
    """The facts ``datamodule`` declares (``None`` for a fact it does not declare)."""
    facts = {}
    for name in FACTS:
        try:
            value = getattr(datamodule, name, None)
        except Exception:  # a property that needs setup() first: not declared up front
            value = None
        if value is not None:
            facts[name] = list(value) if name == "class_names" else value
    if "input_shape" in facts:
        facts["input_shape"] = tuple(facts["input_shape"])
    return facts


def argument_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """The facts under every argument name they fill: the four above, and ``in_channels``."""
    filled = dict(facts)
    shape = facts.get("input_shape")
    if shape:
        filled["in_channels"] = shape[0]
    return filled


def fill_facts(model_config: Namespace, model_class: type, facts: dict[str, Any],
               data_name: str) -> list[str]:
    """Fill the model's init arguments named like a fact from ``facts``, in place.

    A value that differs from both the class's default and the data's fact was set by the
    user, and is refused with a message (the data decides; leave the option out). Returns
    the names filled.

    Args:
        model_config: the ``model`` config (``class_path``, ``init_args``).
        model_class: the class it names.
        facts: :func:`data_facts` of the datamodule.
        data_name: the datamodule's class name, for messages.
    """
    parameters = init_parameters(model_class)
    init_args = model_config.get("init_args")
    if init_args is None:
        init_args = model_config.init_args = Namespace()
    filled = []
    for name, value in argument_facts(facts).items():
        if name not in parameters:
            continue
        given = init_args.get(name)
        default = parameters[name].default
        if given is not None and not _same(given, default) and not _same(given, value):
            raise UserError(
                f"--model.init_args.{name} {_shown(given)} disagrees with the data: "
                f"{data_name} gives {name} {_shown(value)}, and netscope passes the data's "
                f"value to the model. Leave --model.init_args.{name} out (or choose data "
                f"that has {name} {_shown(given)}).")
        init_args[name] = value
        filled.append(name)
    return filled


def init_parameters(cls: Any) -> dict[str, inspect.Parameter]:
    """The named ``__init__`` parameters of ``cls``, and of the base classes its
    ``**kwargs`` passes on to (as jsonargparse reads them): ``MLP(hidden_sizes, **kwargs)``
    takes ``BaseModel``'s ``num_classes`` too."""
    parameters: dict[str, inspect.Parameter] = {}
    if not isinstance(cls, type):  # a function that builds the model (torchvision.models.resnet18)
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):
            return {}
        return {name: p for name, p in signature.parameters.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        try:
            signature = inspect.signature(klass.__init__)
        except (TypeError, ValueError):
            break
        for name, p in signature.parameters.items():
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                parameters.setdefault(name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    return parameters


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def _shown(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)
