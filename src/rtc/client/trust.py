"""What a client's verification rests on: which chain, which validator set, which contract.

A node's answer proves nothing by itself; it is believed because of something the client
already trusts. `TrustPolicy` names that thing, and every check in a receipt says which
part of the policy it rests on, so a reader can see exactly what must be true.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rtc.cometbft import GenesisDoc

from .membership import ContractCheck
from .validation import ValidationCheck


@dataclass(frozen=True)
class TrustPolicy:
    """The anchors of verification. At least one of `validators_hash`, `contract` or
    `trust_on_first_use` must be given.

    - `chain_id`: the cluster's chain; None takes the node's word for it (said in the receipt).
    - `validators_hash`: a validator set trusted by hash (from a genesis file, or pinned);
      the header's signers must be that set. It goes stale when the set changes.
    - `contract`: the signers must be staked members of the cluster in the Registry, read
      through your own Ethereum endpoint; follows the set as nodes join and leave.
    - `trust_on_first_use`: trust the genesis validator set the node itself serves (only as
      good as that node; ask a different node than the one whose answers you check).
    - `validation`: the cluster's Validation contract: a receipt then also shows the members'
      attestations of the result's state and whether batch validators have re-checked it.
    """

    chain_id: str | None = None
    validators_hash: bytes | None = None
    validators_source: str = ""  # where the hash came from, e.g. "the genesis file /x/genesis.json"
    contract: ContractCheck | None = None
    trust_on_first_use: bool = False
    validation: ValidationCheck | None = None

    def __post_init__(self) -> None:
        if self.validators_hash is None and self.contract is None and not self.trust_on_first_use:
            raise ValueError("nothing to verify against: give a validator set hash, a Registry (contract) or "
                             "trust_on_first_use=True")

    @classmethod
    def pinned(cls, chain_id: str | None, validators_hash: bytes, contract: ContractCheck | None = None) -> "TrustPolicy":
        return cls(chain_id, validators_hash, f"the pinned hash {validators_hash.hex()[:16]}…", contract)

    @classmethod
    def from_genesis(cls, genesis: GenesisDoc, source: str = "a genesis document") -> "TrustPolicy":
        return cls(genesis.chain_id, genesis.validators_hash(), f"the genesis validator set of {source}")

    @classmethod
    def from_genesis_file(cls, path: str | Path) -> "TrustPolicy":
        """The chain and validator set of a genesis file the client holds itself (no node involved)."""
        return cls.from_genesis(GenesisDoc.read(Path(path)), f"the file {path}")

    @classmethod
    def first_use(cls, chain_id: str | None = None) -> "TrustPolicy":
        """Trust the genesis validator set the node serves: only as good as that node."""
        return cls(chain_id, trust_on_first_use=True)

    @classmethod
    def registry(cls, contract: ContractCheck, chain_id: str | None = None) -> "TrustPolicy":
        """The cluster's staked members in the Registry are the root of trust."""
        return cls(chain_id, contract=contract)

    @classmethod
    def choose(cls, *, chain_id: str | None = None, validators_hash: bytes | None = None,
               contract: ContractCheck | None = None, genesis_file: Path | None = None,
               trust_on_first_use: bool = False) -> "TrustPolicy":
        """The strongest policy the given anchors allow: a pinned hash (with the contract as well,
        if given), else the contract alone (it follows validator-set changes), else a genesis
        file, else trust on first use, but only when asked for: never a silent fallback."""
        if validators_hash is not None:
            return cls.pinned(chain_id, validators_hash, contract)
        if contract is not None:
            return cls.registry(contract, chain_id)
        if genesis_file is not None:
            policy = cls.from_genesis_file(genesis_file)
            if chain_id is not None and chain_id != policy.chain_id:
                raise ValueError(f"chain id {chain_id!r} contradicts the genesis file's {policy.chain_id!r}")
            return policy
        if not trust_on_first_use:
            raise ValueError("nothing to verify against: give the validator set hash to trust (--trust-hash), the "
                             "Registry (--eth-rpc, --registry, --cluster-id), a devnet's folder (--home), or accept "
                             "the genesis the node serves with --trust-on-first-use")
        return cls.first_use(chain_id)

    def with_validation(self, validation: ValidationCheck | None) -> "TrustPolicy":
        return replace(self, validation=validation)

    def describe(self) -> str:
        """One line: what a result verified under this policy rests on."""
        parts = []
        if self.validators_hash is not None:
            parts.append(f"the validator set of {self.validators_source or 'a trusted hash'}")
        if self.contract is not None:
            parts.append(f"the staked members of {self.contract.describe()}")
        if self.trust_on_first_use:
            parts.append("the genesis validator set the node serves (trust on first use)")
        chain = f"chain {self.chain_id}" if self.chain_id else "the chain id the node reports"
        return f"{' and '.join(parts)}, on {chain}"
