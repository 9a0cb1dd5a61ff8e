"""Optimizers and schedules: not models, so not in ``netscope.models``.

``MuonSGD`` (``--optimizer netscope.optim.MuonSGD``) and the building of any ``torch.optim``
optimizer and LR schedule with lengths taken from the fit (:mod:`netscope.optim.schedules`).
"""

from netscope.optim.muon import MuonSGD

__all__ = ["MuonSGD"]
