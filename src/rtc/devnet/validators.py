"""The devnet's batch validators: nodes outside the cluster, each registered in the Registry
with a deposit and an attester, enrolled in the Validation contract, with a home that
`rtc validator run` (`python -m rtc.validator`) works from."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rtc.ethereum.registry import Registry
from rtc.ethereum.validation import Validation
from rtc.protocol.attestation import address_of
from rtc.validator import ValidatorConfig, attester_key

from .ethereum import register_with_attester
from .manifest import MAX_NODES, EthereumInfo, SwarmInfo, ValidatorInfo


def register_validators(home: Path, info: EthereumInfo, swarm: SwarmInfo, count: int) -> list[ValidatorInfo]:
    """`count` validators, each with its own operator account (anvil's, after the nodes' operators)."""
    registry = Registry.connect(info.url, info.registry)
    validation = Validation.connect(info.url, info.validation)
    w3 = registry.w3
    operators = w3.eth.accounts[1 + MAX_NODES: 1 + MAX_NODES + count]
    made = []
    for index, operator in enumerate(operators):
        folder = home / f"validator{index}"
        key = attester_key(folder)
        attester = address_of(key)
        # A batch validator runs no CometBFT; the Registry still wants a unique validator key per node.
        placeholder = hashlib.sha256(b"rtc batch validator " + attester).digest()
        node_id = register_with_attester(registry, operator, placeholder, key)
        validation.enroll(operator, node_id)
        ValidatorConfig(eth_rpc=info.url, registry=info.registry, validation=info.validation, swarm=swarm.store,
                        node_id=node_id, swarm_batch=swarm.batch, disputes=info.disputes).save(folder)
        made.append(ValidatorInfo(f"validator{index}", str(folder.resolve()), node_id, operator))
    return made
