"""The devnet's Ethereum side: an anvil chain with the Registry, the Validation and the Disputes contract,
every node registered with a deposit and its attester key, asking to join the cluster that
runs the devnet's backend, and admitted by the cluster's owner (the account that deployed
the contracts and created the cluster)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from web3 import Web3

from rtc.ethereum import Anvil
from rtc.ethereum.disputes import DisputeRules, Disputes
from rtc.ethereum.registry import Registry
from rtc.ethereum.validation import Validation
from rtc.membership import EthereumSettings
from rtc.protocol.attestation import address_of, attester_proof

from .manifest import MAX_NODES, EthereumInfo, state_file

ETHER = 10**18
MIN_DEPOSIT = 1 * ETHER
NODE_DEPOSIT = 10 * ETHER
COOLING_OFF_BLOCKS = 20
CONFIRMATIONS = 2  # anvil has no finality; a block this deep counts as final
BLOCK_SECONDS = 1  # anvil mines on this timer, so "final" advances while nothing happens
CHECKPOINT_INTERVAL = 10  # cluster blocks between checkpoints
VALIDATORS_PER_CHECKPOINT = 2
RESPONSE_BLOCKS = 30  # Ethereum blocks (seconds, at BLOCK_SECONDS) a drawn validator has to endorse
DISPUTE_WINDOW_BLOCKS = 10  # after a checkpoint is validated, before the members that attested it may withdraw
ATTESTER_FUNDS = 10 * ETHER  # what each node's attester gets to pay for posting checkpoints and dispute bonds
# Ethereum blocks are seconds here: a jury commits within 15 s, reveals within 15 s, and a
# decisive round is open to appeal for 5 s; history missing from Swarm for 60 s counts against
# the accused.
DISPUTE_RULES = DisputeRules(bond_wei=1 * ETHER, jury_size=3, commit_blocks=15, reveal_blocks=15, appeal_blocks=5,
                             availability_blocks=60)


def cluster_settings(info: EthereumInfo) -> EthereumSettings:
    """The contract the devnet's cluster follows, as its genesis names it."""
    return EthereumSettings(info.chain_id, info.registry, info.cluster_id, CONFIRMATIONS, info.validation or None)


def start_anvil(home: Path, port: int) -> Anvil:
    anvil = Anvil(port, block_time=BLOCK_SECONDS, log_path=home / "logs" / "anvil.log", state_path=state_file(home))
    return anvil.start()


def register_cluster(url: str, code_hash: bytes, code_reference: bytes, validator_keys: list[bytes],
                     attester_keys: list[bytes], managed: bool = False) -> EthereumInfo:
    """Deploy the Registry and the Validation contract, create the cluster for the backend
    (checkpoints every CHECKPOINT_INTERVAL blocks), register every node with its attester and admit it.

    Needs funded accounts unlocked at the endpoint (anvil's, or a dev chain's): the first
    deploys the Registry and creates the cluster, so it owns the cluster and approves each
    node's request to join (one per Ethereum block, as the contract allows); the next ones
    are the nodes' operators. The Disputes contract is the Registry's slasher and the
    beneficiary of what it slashes (it pays bounties from it). `managed`: the devnet's own
    anvil, which mines each of these transactions at once instead of on its timer.
    """
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
    accounts = w3.eth.accounts
    if len(accounts) < 1 + MAX_NODES:
        raise RuntimeError(f"{url} has {len(accounts)} unlocked accounts; a devnet needs {1 + MAX_NODES} "
                           "funded ones (the deployer and one operator per possible node), as anvil gives")
    deployer, operators = accounts[0], accounts[1:1 + len(validator_keys)]
    with _mining_at_once(w3, managed):
        registry = Registry.deploy(w3, deployer, MIN_DEPOSIT, COOLING_OFF_BLOCKS)
        validation = Validation.deploy(w3, deployer, registry.address, DISPUTE_WINDOW_BLOCKS)
        registry.set_validation(deployer, validation.address)
        disputes = Disputes.deploy(w3, deployer, registry.address, validation.address, DISPUTE_RULES)
        registry.set_slasher(deployer, disputes.address)
        registry.set_beneficiary(deployer, disputes.address)
        validation.set_disputes(deployer, disputes.address)
        cluster_id = registry.create_cluster(deployer, code_reference, code_hash, MAX_NODES)
        validation.set_checkpoint_interval(deployer, cluster_id, CHECKPOINT_INTERVAL)
        node_ids = [admit_node(registry, deployer, operator, key, attester, cluster_id)
                    for operator, key, attester in zip(operators, validator_keys, attester_keys)]
    wait_until_final(w3, int(w3.eth.block_number))
    return EthereumInfo(url, urlsplit(url).port or 0, registry.address, cluster_id, list(operators), node_ids,
                        chain_id=int(w3.eth.chain_id), owner=deployer, validation=validation.address,
                        disputes=disputes.address)


def register_successor(old: EthereumInfo, code_hash: bytes, code_reference: bytes, validator_keys: list[bytes],
                       attester_keys: list[bytes]) -> EthereumInfo:
    """A new cluster for the same backend in the same contracts, whose new members (operators the
    old cluster never used: the accounts after its nodes') the owner admits: where a convicted
    cluster's service goes on (docs/disputes.md)."""
    w3 = Web3(Web3.HTTPProvider(old.url, request_kwargs={"timeout": 10}))
    accounts = w3.eth.accounts
    first = max(accounts.index(operator) for operator in old.operators) + 1
    if first + len(validator_keys) > 1 + MAX_NODES:
        raise RuntimeError(f"{old.url} has no unused operator accounts left for {len(validator_keys)} new members")
    owner, operators = old.owner or accounts[0], accounts[first:first + len(validator_keys)]
    registry = Registry.connect(old.url, old.registry)
    validation = Validation.connect(old.url, old.validation)
    cluster_id = registry.create_cluster(owner, code_reference, code_hash, MAX_NODES)
    validation.set_checkpoint_interval(owner, cluster_id, CHECKPOINT_INTERVAL)
    node_ids = [admit_node(registry, owner, operator, key, attester, cluster_id)
                for operator, key, attester in zip(operators, validator_keys, attester_keys)]
    wait_until_final(w3, int(w3.eth.block_number))
    return EthereumInfo(old.url, old.port, old.registry, cluster_id, list(operators), node_ids,
                        managed=False, chain_id=old.chain_id, owner=owner, validation=old.validation,
                        disputes=old.disputes)


def set_validator_rules(info: EthereumInfo, genesis_reference: bytes) -> None:
    """VALIDATORS_PER_CHECKPOINT validators re-check each checkpoint, replaying from the genesis in Swarm."""
    validation = Validation.connect(info.url, info.validation)
    validation.set_validator_rules(cluster_owner(info), info.cluster_id, VALIDATORS_PER_CHECKPOINT, RESPONSE_BLOCKS,
                                   genesis_reference)


def register_with_attester(registry: Registry, operator: str, validator_key: bytes, attester_key: bytes) -> int:
    """Register a node with the devnet's deposit and name its attester (with the key's proof), funded
    from the operator to pay for its Ethereum transactions (checkpoints, endorsements)."""
    node_id = registry.register(operator, validator_key, NODE_DEPOSIT)
    attester = address_of(attester_key)
    proof = attester_proof(attester_key, bytes.fromhex(registry.address[2:]), int(registry.w3.eth.chain_id), node_id)
    registry.set_attester(operator, node_id, "0x" + attester.hex(), proof)
    registry.w3.eth.wait_for_transaction_receipt(registry.w3.eth.send_transaction(
        {"from": operator, "to": registry.w3.to_checksum_address(attester), "value": ATTESTER_FUNDS}))
    return node_id


def admit_node(registry: Registry, owner: str, operator: str, validator_key: bytes, attester_key: bytes,
               cluster_id: int) -> int:
    """Register a node with the devnet's deposit and its attester (funded to post checkpoints), ask
    to join the cluster and approve it as the cluster's owner."""
    node_id = register_with_attester(registry, operator, validator_key, attester_key)
    registry.request_join(operator, node_id, cluster_id)
    registry.approve_join(owner, node_id)  # each transaction waits for its block: one admission per block
    return node_id


@contextmanager
def _mining_at_once(w3: Web3, managed: bool) -> Iterator[None]:
    """On the devnet's own anvil, mine every transaction at once (then the timer again)."""
    if not managed:
        yield
        return
    w3.provider.make_request("evm_setAutomine", [True])
    try:
        yield
    finally:
        w3.provider.make_request("evm_setIntervalMining", [BLOCK_SECONDS])


def wait_until_final(w3: Web3, block: int, timeout: float = 30.0) -> None:
    """Return once `block` counts as final for the nodes (CONFIRMATIONS deep). The genesis names
    every node as a validator; if the nodes started earlier, the first Ethereum sync could be
    proposed from a final block that predates the last join and drop that node for a while."""
    try:
        w3.provider.make_request("anvil_mine", [CONFIRMATIONS])  # anvil: at once
    except Exception:  # noqa: BLE001 - another dev chain: its blocks come by themselves
        pass
    deadline = time.monotonic() + timeout
    while int(w3.eth.block_number) < block + CONFIRMATIONS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Ethereum block {block} did not get {CONFIRMATIONS} confirmations within {timeout:.0f}s")
        time.sleep(0.2)


def operator_account(url: str, index: int) -> str:
    """The unlocked account that operates node `index` (account 0 deployed the Registry)."""
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10})).eth.accounts[1 + index]


def register_node(info: EthereumInfo, operator: str, validator_key: bytes, attester_key: bytes) -> int:
    """Register one more node with the devnet's deposit; it asks to join and the cluster's owner approves."""
    registry = Registry.connect(info.url, info.registry)
    return admit_node(registry, cluster_owner(info), operator, validator_key, attester_key, info.cluster_id)


def cluster_owner(info: EthereumInfo) -> str:
    """The account that owns the devnet's cluster (a manifest from before it was recorded: the deployer)."""
    return info.owner or Web3(Web3.HTTPProvider(info.url, request_kwargs={"timeout": 10})).eth.accounts[0]
