"""From a study to the runs it stands for: combinations of values and their command lines.

Command lines are built the way ``wandb agent`` builds them (``wandb/wandb_agent.py``):
``${args}`` becomes ``--<name>=<value>`` per parameter, with the value as Python's
``str`` prints it. So a dict value reaches ``main.py`` as ``{'class_path': ..., 'init_args':
{...}}``, a YAML flow mapping that jsonargparse reads, and a study behaves the same
locally and on W&B.
"""

import itertools
import json
import math
import os
import random
import re
import sys
from typing import Any

from netscope.core.errors import UserError
from netscope.core.rundir import slug
from netscope.studies.spec import Study

Combo = dict[str, Any]
#: The parameter that seeds a run (LightningCLI's ``seed_everything``). Runs that differ
#: only in it are repetitions of one setting, which the report aggregates.
SEED = "seed_everything"

_ENVVAR = re.compile(r"\$\{envvar:([A-Za-z0-9_]*)\}")


def expand(study: Study, count: int | None = None, seed: int = 0) -> list[Combo]:
    """The combinations of parameter values to run, in order.

    Args:
        study: the study.
        count: at most this many runs (like ``wandb agent --count``); a random study needs
            it or the study's ``run_cap``.
        seed: seed of the random search, so a second invocation draws the same runs
            (which is how it finds the ones already done).
    """
    cap = min(n for n in (count, study.run_cap, math.inf) if n is not None)
    if study.method == "grid":
        names = list(study.parameters)
        grids = [grid_choices(name, study.parameters[name]) for name in names]
        combos = [dict(zip(names, values)) for values in itertools.product(*grids)]
    elif study.method == "random":
        if cap == math.inf:
            raise UserError(f"the random study {study.name} needs a number of runs: set `run_cap` "
                            f"in {study.path} or pass --count N.")
        rng = random.Random(seed)
        combos = [{name: sample(name, spec, rng) for name, spec in study.parameters.items()}
                  for _ in range(int(cap))]
    else:
        raise UserError(f"the local runner does grid and random studies; {study.path} asks for "
                        f"`method: {study.method}`, which needs W&B's controller (`wandb sweep`).")
    unique = list({combo_key(combo): combo for combo in combos}.values())  # identical runs once
    return unique[: int(cap)] if cap != math.inf else unique


def grid_choices(name: str, spec: dict[str, Any]) -> list[Any]:
    """Every value a grid takes for one parameter (nested parameters give dicts)."""
    if "parameters" in spec:
        names = list(spec["parameters"])
        grids = [grid_choices(f"{name}.{sub}", spec["parameters"][sub]) for sub in names]
        return [dict(zip(names, values)) for values in itertools.product(*grids)]
    if "value" in spec:
        return [spec["value"]]
    if "values" in spec:
        return list(spec["values"])
    if spec.get("distribution", "int_uniform") == "int_uniform" and isinstance(spec.get("min"), int):
        return list(range(spec["min"], spec["max"] + 1))
    raise UserError(f"a grid needs discrete values; parameter `{name}` has the distribution "
                    f"{spec.get('distribution', 'uniform')!r}: give it `values`, or use `method: random`.")


def sample(name: str, spec: dict[str, Any], rng: random.Random) -> Any:
    """One random draw for one parameter, with W&B's meaning of each distribution."""
    if "parameters" in spec:
        return {sub: sample(f"{name}.{sub}", s, rng) for sub, s in spec["parameters"].items()}
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return rng.choices(spec["values"], weights=spec.get("probabilities"))[0]
    low, high = spec.get("min"), spec.get("max")
    distribution = spec.get("distribution") or ("int_uniform" if isinstance(low, int) else "uniform")
    match distribution:
        case "int_uniform":
            return rng.randint(low, high)
        case "uniform":
            return rng.uniform(low, high)
        case "q_uniform":
            q = spec.get("q", 1.0)
            return round(rng.uniform(low, high) / q) * q
        case "log_uniform":  # min and max are natural logarithms
            return math.exp(rng.uniform(low, high))
        case "log_uniform_values":
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        case "normal":
            return rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0))
        case "log_normal":
            return math.exp(rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0)))
    raise UserError(f"the local runner does not draw from {distribution!r} (parameter `{name}`); "
                    "use values, uniform, int_uniform, q_uniform, log_uniform(_values), normal or log_normal.")


def combo_key(combo: Combo) -> str:
    """A stable text key of a combination (the index of a study folder is keyed by it)."""
    return json.dumps(combo, sort_keys=True, default=str)


def leaves(value: Any, prefix: str) -> dict[str, Any]:
    """A value flattened into dotted names: ``{"optimizer.class_path": ..., "optimizer.init_args.lr": ...}``."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat |= leaves(item, f"{prefix}.{key}")
        return flat
    return {prefix: value}


def flatten(mapping: dict[str, Any]) -> dict[str, Any]:
    """A mapping flattened into dotted names down to the leaves of dict values (lists kept
    whole): a combination, or a run's resolved config."""
    flat: dict[str, Any] = {}
    for name, value in mapping.items():
        flat |= leaves(value, name)
    return flat


def setting(combo: Combo) -> Combo:
    """The combination without its seed: what runs of one setting share."""
    return {name: value for name, value in combo.items() if name != SEED}


def varying(combos: list[Combo]) -> list[str]:
    """The dotted names (down to the leaves of dict values) whose value differs between runs."""
    flats = [flatten(combo) for combo in combos]
    names = list(dict.fromkeys(name for flat in flats for name in flat))
    return [name for name in names
            if len({json.dumps(flat.get(name), sort_keys=True, default=str) for flat in flats}) > 1]


def labels(combos: list[Combo], fallback: str) -> list[str]:
    """A short, file-name-safe name per run from what varies: ``relu``, ``Adam-lr0.001``."""
    names = sorted(varying(combos), key=lambda name: name == SEED)  # the seed reads last
    result = []
    for combo in combos:
        flat = flatten(combo)
        parts = [label_part(name, flat[name]) for name in names if name in flat]
        result.append(slug("-".join(parts)) if parts else slug(fallback))
    return result


def label_part(name: str, value: Any) -> str:
    """How one value reads in a run's name: class paths as class names, numbers with
    their key (``lr0.01``), lists joined (``hidden_sizes128x64``)."""
    key = name.rsplit(".", 1)[-1]
    if key == SEED:
        return f"seed{value}"
    if isinstance(value, str):
        # A class path reads as its class name: torch.optim.Adam -> Adam.
        return value.rsplit(".", 1)[-1] if re.fullmatch(r"[A-Za-z_][\w.]*", value) else value
    if isinstance(value, (list, tuple)):
        return key + "x".join(map(str, value))
    return f"{key}{value}"


def format_args(combo: Combo, equals: bool = True) -> list[str]:
    """The parameters as ``wandb agent`` passes them for ``${args}`` (``--name=value``)
    or ``${args_no_equals}`` (``--name value``)."""
    if equals:
        return [f"--{name}={value}" for name, value in combo.items()]
    return [item for name, value in combo.items() for item in (f"--{name}", str(value))]


def build_command(study: Study, combo: Combo, extra: list[str]) -> list[str]:
    """The command line of one run: the study's ``command`` with its macros filled in as
    ``wandb agent`` fills them, then ``extra`` (the runner's and the user's overrides).

    ``${interpreter}`` is this Python (the agent uses ``python`` from ``PATH``) and
    ``${env}`` is dropped (the agent prefixes ``/usr/bin/env``, which changes nothing here).
    """
    command: list[str] = []
    for item in study.command:
        item = _ENVVAR.sub(lambda m: os.environ.get(m.group(1), m.group(1)), str(item))
        match item:
            case "${env}":
                continue
            case "${interpreter}":
                command.append(sys.executable)
            case "${program}":
                command.append(str(study.program))
            case "${args}":
                command += format_args(combo)
            case "${args_no_equals}":
                command += format_args(combo, equals=False)
            case _ if item.startswith("${") and item.endswith("}"):
                raise UserError(f"the local runner does not fill the macro {item} in {study.path}; "
                                "use ${env}, ${interpreter}, ${program}, ${args} or ${args_no_equals}.")
            case _:
                command.append(item)
    return command + list(extra)
