"""A study file: a Weights & Biases sweep configuration, loaded and checked.

The same file drives ``wandb sweep`` + ``wandb agent`` and the local runner, so it is
checked against W&B's documented sweep format (the JSON schema of W&B's ``sweeps``
package, ``config/schema.json``). That validator ships only with the ``wandb[sweeps]``
extra, which pulls in scikit-learn and SciPy for Bayesian search, so the parts of the
schema a study uses are checked here by hand.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from netscope.core.errors import UserError

#: Top-level keys of a W&B sweep configuration (the schema allows no others).
TOP_LEVEL_KEYS = frozenset({
    "apiVersion", "kind", "controller", "description", "program", "job", "image_uri",
    "entity", "project", "method", "command", "name", "run_cap", "metric", "metrics",
    "scheduler", "early_terminate", "parameters",
})
#: Search methods of a sweep; the local runner carries out grid and random (Bayesian
#: search needs W&B's controller).
Method = Literal["grid", "random", "bayes", "custom"]
METHODS: tuple[str, ...] = get_args(Method)

#: Keys each distribution takes, as in W&B's schema.
DISTRIBUTIONS: dict[str, tuple[set[str], set[str]]] = {
    # name: (required keys besides "distribution", optional keys)
    "constant": ({"value"}, set()),
    "categorical": ({"values"}, set()),
    "categorical_w_probabilities": ({"values", "probabilities"}, set()),
    "int_uniform": ({"min", "max"}, set()),
    "uniform": ({"min", "max"}, set()),
    "q_uniform": ({"min", "max"}, {"q"}),
    "log_uniform": ({"min", "max"}, set()),
    "log_uniform_values": ({"min", "max"}, set()),
    "q_log_uniform": ({"min", "max"}, {"q"}),
    "q_log_uniform_values": ({"min", "max"}, {"q"}),
    "inv_log_uniform": ({"min", "max"}, set()),
    "inv_log_uniform_values": ({"min", "max"}, set()),
    "normal": (set(), {"mu", "sigma"}),
    "q_normal": (set(), {"mu", "sigma", "q"}),
    "log_normal": (set(), {"mu", "sigma"}),
    "q_log_normal": (set(), {"mu", "sigma", "q"}),
    "beta": (set(), {"a", "b"}),
    "q_beta": (set(), {"a", "b", "q"}),
}
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
#: Command macros that hand the parameters to the program.
ARGS_MACROS = ("${args}", "${args_no_equals}", "${args_no_hyphens}", "${args_json}",
               "${args_json_file}", "${args_no_boolean_flags}")


@dataclass(frozen=True)
class Study:
    """A loaded, checked study file."""

    name: str
    path: Path
    method: Method
    parameters: dict[str, dict[str, Any]]
    command: list[str]
    program: str | None = None
    run_cap: int | None = None
    description: str = ""
    #: The sweep's ``metric`` (``name``, ``goal``): what the report compares settings on.
    metric: dict[str, str] | None = None


def load_study(path: str | Path) -> Study:
    """Read and check a study file; a user error names every problem found."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as error:
        raise UserError(f"cannot read the study file {path}: {error.strerror or error}.") from None
    except yaml.YAMLError as error:
        raise UserError(f"the study file {path} is not valid YAML: {error}") from None
    problems = sweep_config_problems(config)
    if problems:
        raise UserError(f"{path} is not a valid W&B sweep configuration: " + "; ".join(problems) + ".")
    return Study(
        name=str(config.get("name") or path.stem),
        path=path,
        method=config["method"],
        parameters=config["parameters"],
        command=[str(item) for item in config["command"]],
        program=config.get("program"),
        run_cap=config.get("run_cap"),
        description=str(config.get("description") or "").strip(),
        metric=config.get("metric"),
    )


def sweep_config_problems(config: Any) -> list[str]:
    """Every way ``config`` departs from W&B's sweep format, or from what a study needs
    (a ``command`` that passes the parameters with ``${args}``); empty when it is valid."""
    if not isinstance(config, dict):
        return ["it must be a mapping with `method`, `parameters` and `command`"]
    problems = [f"unknown top-level key `{key}`" for key in config if key not in TOP_LEVEL_KEYS]
    if config.get("method") not in METHODS:
        problems.append(f"`method` must be one of {', '.join(METHODS)} (got {config.get('method')!r})")
    parameters = config.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        problems.append("`parameters` must be a non-empty mapping of parameter names")
    else:
        problems += _parameters_problems(parameters, prefix="")
    command = config.get("command")
    if not isinstance(command, list) or not command:
        problems.append("`command` must be a list of command-line items, ${args} among them")
    else:
        if not any(str(item) in ARGS_MACROS for item in command):
            problems.append("`command` must contain ${args}, which passes the parameters to main.py")
        if "${program}" in map(str, command) and not isinstance(config.get("program"), str):
            problems.append("`command` uses ${program} but `program` (e.g. main.py) is not set")
    run_cap = config.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        problems.append("`run_cap` must be a positive integer")
    metric = config.get("metric")
    if metric is not None and (not isinstance(metric, dict) or "name" not in metric
                               or metric.get("goal", "minimize") not in ("minimize", "maximize")):
        problems.append("`metric` must have a `name` and a `goal` of minimize or maximize")
    for key in ("name", "description", "program", "project", "entity"):
        if key in config and not isinstance(config[key], str):
            problems.append(f"`{key}` must be a string")
    return problems


def _parameters_problems(parameters: dict[str, Any], prefix: str) -> list[str]:
    problems = []
    for name, spec in parameters.items():
        label = f"parameter `{prefix}{name}`"
        if not isinstance(name, str) or not PARAMETER_NAME.match(name):
            problems.append(f"{label}: names are letters, digits, `_`, `.` and `-`")
        if not isinstance(spec, dict):
            problems.append(f"{label} must be a mapping such as {{values: [a, b]}} or {{value: a}}")
        elif "parameters" in spec:
            if set(spec) != {"parameters"} or not isinstance(spec["parameters"], dict) or not spec["parameters"]:
                problems.append(f"{label}: a nested `parameters` mapping stands alone and is non-empty")
            else:
                problems += _parameters_problems(spec["parameters"], prefix=f"{prefix}{name}.")
        else:
            problems += [f"{label}: {problem}" for problem in _parameter_problems(spec)]
    return problems


def _parameter_problems(spec: dict[str, Any]) -> list[str]:
    distribution = spec.get("distribution") or _implied_distribution(spec)
    if distribution not in DISTRIBUTIONS:
        return [f"unknown distribution {distribution!r}; use `value`, `values` or one of "
                + ", ".join(sorted(DISTRIBUTIONS))]
    required, optional = DISTRIBUTIONS[distribution]
    problems = [f"`{key}` is required by {distribution}" for key in sorted(required - set(spec))]
    allowed = required | optional | {"distribution"}
    problems += [f"`{key}` does not belong to {distribution}" for key in sorted(set(spec) - allowed)]
    if "values" in spec and (not isinstance(spec["values"], list) or not spec["values"]):
        problems.append("`values` must be a non-empty list")
    probabilities = spec.get("probabilities")
    if probabilities is not None and (not isinstance(probabilities, list)
                                      or len(probabilities) != len(spec.get("values") or [])):
        problems.append("`probabilities` must be a list as long as `values`")
    for bound in ("min", "max"):
        if bound in spec and (not isinstance(spec[bound], (int, float)) or isinstance(spec[bound], bool)):
            problems.append(f"`{bound}` must be a number")
    return problems


def _implied_distribution(spec: dict[str, Any]) -> str | None:
    """The distribution W&B infers when none is given."""
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "min" in spec and "max" in spec:
        both_int = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
        return "int_uniform" if both_int else "uniform"
    return None
