"""Batch validation from outside a cluster: a daemon that re-executes the checkpoints it is drawn
for from Swarm alone and endorses them on Ethereum (docs/validation.md).

`replica` (one cluster's state as this validator re-executed it, and the judgement of a
checkpoint) and `daemon` (the loop that watches the Validation contract and endorses).
"""

from .daemon import ValidatorConfig, ValidatorDaemon, attester_key
from .replica import CannotJudge, ClusterSource, Judgement, Replica

__all__ = ["CannotJudge", "ClusterSource", "Judgement", "Replica", "ValidatorConfig", "ValidatorDaemon",
           "attester_key"]
