"""The fault zoo (``benchmarks/zoo.py``): every broken case produces its finding on its
layer, every healthy case no warning or error.

By default the cases the pre-flight check must find at step 0 run through
``python main.py check`` (seconds each; a healthy fit without warnings is in
``tests/test_doctor.py``); ``-m slow`` runs every case as the full fit.
"""

import pytest

from benchmarks.doctor import run_case, tiny_cifar
from benchmarks.zoo import BROKEN, SHARED_DATA, ZOO, Case, arguments
from tests.helpers import metrics, run


def available(case: Case) -> pytest.MarkDecorator:
    return pytest.mark.skipif(bool(case.data) and not (SHARED_DATA / str(case.data)).exists(),
                              reason=f"no ../shared/data/{case.data}")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=available(c))
                                  for c in BROKEN if c.quick])
def test_preflight_finds_init_faults_at_step_zero(case, tmp_path):
    args = arguments(case)
    run_dir = run("check", *args[1:], root=tmp_path / "runs")
    found = [f for f in metrics(run_dir)["findings"] if f["code"] == case.code]
    assert found, metrics(run_dir)["findings"]
    assert found[0]["where"] == case.where and found[0]["step"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=available(c)) for c in ZOO])
def test_zoo_case(case, tmp_path):
    row = run_case(case, tmp_path / "runs", tiny_cifar(tmp_path / "cifar10"))
    assert row["ok"], row
