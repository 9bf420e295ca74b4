"""Who signed a header, according to the Registry contract: the client's root of trust.

A commit proves that the validators of header H+1 signed it, but the node that serves
the commit also serves that validator set. A client that trusted a fixed set (genesis)
could check it by hash; once the set changes as nodes join and leave the cluster in the
contract, the set to trust is whatever the contract says the cluster is. `ContractCheck`
asks the Registry (through the client's own Ethereum endpoint, never the node's) whether
every signer is an active member of this cluster (so its deposit is in place), whether
enough of them signed, and who may slash those deposits (the Registry's `slasher`).

Reading (`ContractCheck.read`, web3 I/O) is apart from judging (`ContractCheck.judge`,
pure), so a receipt can be re-checked from the facts it holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rtc.cometbft.lightclient import Validator, VerificationError, VerifiedCommit
from rtc.ethereum.types import NodeState

if TYPE_CHECKING:  # web3 is imported only when the contract is asked
    from rtc.ethereum.registry import Registry

ETHER = 10**18


@dataclass(frozen=True)
class SignerFact:
    """What the contract says about one signer, and whether its signature counts."""

    validator_address: str  # CometBFT address (upper-case hex), as in the commit
    validator_key: str  # ed25519 public key, hex
    node_id: int  # 0: no node ever registered this key
    operator: str | None
    deposit_wei: int
    status: str  # STATUS_NAMES of the contract ("none" for an unknown key)
    cluster_id: int  # the cluster the node joined (0: none)
    withdrawable_block: int  # 0 while active
    counted: bool
    reason: str  # why it counts, or why not

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RegistryFacts:
    """What the contract said, all at one Ethereum block: each key's node, the cluster's members
    and who may slash deposits."""

    registry: str
    cluster_id: int  # the cluster whose members `member_ids` are
    ethereum_block: int
    nodes: Mapping[bytes, NodeState | None]  # by validator key (None: no node ever registered it)
    member_ids: tuple[int, ...]
    slasher: str | None = None  # the Registry's slasher (None: nobody can slash)


@dataclass(frozen=True)
class MembershipReport:
    """The outcome of a contract check that passed, with the facts a receipt shows."""

    registry: str
    cluster_id: int
    ethereum_block: int  # the state every fact was read from
    validator_set_size: int
    active_members: int
    signers: tuple[SignerFact, ...]
    slasher: str | None = None  # who may take these deposits (None: nobody, no slasher is set)

    @property
    def counted(self) -> list[SignerFact]:
        return [s for s in self.signers if s.counted]

    @property
    def not_counted(self) -> list[SignerFact]:
        return [s for s in self.signers if not s.counted]

    @property
    def basis(self) -> int:
        """The count the 2/3 is taken of: the larger of the header's set and the cluster's members."""
        return max(self.validator_set_size, self.active_members)

    @property
    def needed(self) -> int:
        """Counted signers must be strictly more than this (CometBFT's `total * 2 // 3`)."""
        return self.basis * 2 // 3

    def basis_text(self) -> str:
        if self.active_members >= self.validator_set_size:
            return f"the {self.active_members} active members"
        return f"the {self.validator_set_size} validators in the header's set"

    def slasher_text(self) -> str:
        if self.slasher is None:
            return "no slasher is set in the Registry: nobody can slash these deposits"
        return f"slashable by {self.slasher}"

    def check_line(self) -> str:
        """One line for `Receipt.checks`: what was established and against what."""
        members = self.counted
        where = f"cluster {self.cluster_id} in Registry {self.registry}"
        line = (f"{_n(len(members), 'signer is an active member', 'signers are active members')} of {where} "
                f"with deposits in place ({_deposits(members)}), more than 2/3 of {self.basis_text()} "
                f"(Ethereum block {self.ethereum_block}); {self.slasher_text()}")
        if self.not_counted:
            line += f"; {_n(len(self.not_counted), 'other signer was', 'other signers were')} not counted"
        return line

    def lines(self) -> list[str]:
        """One row per signer, for a human reading the receipt."""
        rows = []
        for s in self.signers:
            mark = "counted" if s.counted else "NOT counted"
            node = f"node {s.node_id}" if s.node_id else "no node"
            deposit = f"{_ether(s.deposit_wei)} ETH" if s.node_id else "-"
            rows.append(f"{s.validator_address[:12]}…  {node:8} {deposit:>9}  {s.status:9} {mark}: {s.reason}"
                        + (f" (operator {s.operator})" if s.operator else ""))
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry, "cluster_id": self.cluster_id, "ethereum_block": self.ethereum_block,
            "validator_set_size": self.validator_set_size, "active_members": self.active_members,
            "counted": len(self.counted), "needed_more_than": self.needed, "slasher": self.slasher,
            "not_counted": [s.to_json() for s in self.not_counted],
        }


class ContractCheck:
    """Require that the signers of a header are active members of one cluster in the Registry.

    A signer counts when the contract, at the latest Ethereum block B, says its validator
    key belongs to an active member of THIS cluster (which implies its deposit is at least
    the minimum). A node that left or was ejected does not count, even inside its
    cooling-off: its deposit is still slashable, but ex-members are exactly who could
    forge a header together (three of a cluster of four leave, and sign a set of
    themselves), and the cluster no longer stands behind them. An unknown key, a node of
    another cluster (or of none) and a node that left do not count; they are reported.

    The counted signers must be more than 2/3 of max(size of the header's validator set,
    the cluster's active members), by count, because every member has the same voting
    power. The validator set alone is no measure: it comes from the node being checked,
    and a single staked member could serve a header signed by a set made of just itself
    (a perfect 1 of 1). Measuring against the contract's member count as well makes such a
    header need the signatures of more than 2/3 of the real cluster. Taking the larger of
    the two, not only the member count, means a set inflated with extra keys only raises
    the bar; during the short lag between a member leaving in the contract and the
    validator set following it, the remaining members still sign more than 2/3 of the old
    set when they are all up. Counting, not summing the set's powers, means a fabricated
    set cannot make one signer weigh more than another.

    The Ethereum endpoint is the client's own and the contract is the root of trust: a
    node cannot influence either. The facts are those of the latest block, not of the time
    the header was signed, so a result whose signers have since left no longer verifies;
    verify results when you get them. The report names the Registry's slasher, the only
    account that can take a deposit (none set: the deposits answer for nothing).
    """

    def __init__(self, registry: Registry, cluster_id: int) -> None:
        if cluster_id <= 0:
            raise ValueError(f"cluster ids count from 1, not {cluster_id}")
        self.registry = registry
        self.cluster_id = cluster_id

    @classmethod
    def connect(cls, url: str, address: str, cluster_id: int) -> "ContractCheck":
        """The Registry at `address` through the Ethereum JSON-RPC endpoint `url`."""
        from rtc.ethereum.registry import Registry

        return cls(Registry.connect(url, address), cluster_id)

    def __repr__(self) -> str:
        return f"ContractCheck(registry={self.registry.address}, cluster_id={self.cluster_id})"

    def describe(self) -> str:
        endpoint = getattr(self.registry.w3.provider, "endpoint_uri", "an Ethereum endpoint")
        return f"cluster {self.cluster_id} in Registry {self.registry.address}, read through {endpoint}"

    def assumption(self, slasher: str | None) -> str:
        """What a passed check rests on, for the receipt's `Check.assumption`."""
        slashing = (f"only {slasher} (the Registry's slasher) can take a deposit, so a deposit answers for what its "
                    "node signs only if that slasher acts" if slasher is not None
                    else "the Registry names no slasher, so nobody can slash these deposits: they answer for nothing")
        return (f"your Ethereum endpoint reports the chain truthfully, and {self.registry.address} and cluster "
                f"{self.cluster_id} are the cluster you mean; only nodes that are active members at the Ethereum "
                "block read count (members that left or were ejected do not, even in their cooling-off), and they "
                f"are checked then, not when the header was signed; {slashing}")

    # -- reading (blocking web3 calls) ----------------------------------------------------

    def read(self, keys: Sequence[bytes]) -> RegistryFacts:
        """The nodes of these validator keys and the cluster's members, all at the latest block.

        Raises VerificationError (kind "contract_unavailable") when the contract cannot be read."""
        from web3.exceptions import Web3Exception

        keys = [bytes(k) for k in keys]
        try:
            block = int(self.registry.w3.eth.block_number)
            states = self.registry.nodes_by_keys(keys, block)
            ids = self.registry.contract.functions.members(self.cluster_id).call(block_identifier=block)
            slasher = str(self.registry.contract.functions.slasher().call(block_identifier=block))
        except (Web3Exception, OSError) as exc:
            endpoint = getattr(self.registry.w3.provider, "endpoint_uri", "the Ethereum endpoint")
            raise VerificationError(
                "contract_unavailable",
                f"cannot read the Registry {self.registry.address} through {endpoint} ({type(exc).__name__}: {exc}); "
                "the result is NOT verified. Check that the Ethereum endpoint is up and that the address is the Registry.",
            ) from None
        return RegistryFacts(self.registry.address, self.cluster_id, block, dict(zip(keys, states)),
                             tuple(int(i) for i in ids), None if int(slasher, 16) == 0 else slasher)

    # -- judging (pure) -------------------------------------------------------------------

    def judge(self, facts: RegistryFacts, validator_keys: Sequence[bytes], signer_keys: Sequence[bytes],
              height: int | None = None) -> MembershipReport:
        """Decide from `facts` whether enough signers count; raises VerificationError (kind
        "membership") when too few do: never a silent pass."""
        if (facts.registry, facts.cluster_id) != (self.registry.address, self.cluster_id):
            raise VerificationError("membership", f"the facts were read for cluster {facts.cluster_id} of Registry "
                                                  f"{facts.registry}, not for {self.describe()}")
        validator_keys = [bytes(k) for k in validator_keys]
        signer_keys = [bytes(k) for k in signer_keys]
        if len(set(validator_keys)) != len(validator_keys):
            raise VerificationError("validator_set", "the validator set lists a key twice")
        if len(set(signer_keys)) != len(signer_keys):
            raise VerificationError("duplicate_signature", "a validator key is among the signers twice")
        in_set = set(validator_keys)
        outsiders = [k for k in signer_keys if k not in in_set]
        if outsiders:
            raise VerificationError("unknown_validator", f"signer {outsiders[0].hex()} is not in the header's validator set")
        members = list(facts.member_ids)
        judged = tuple(self._judge(key, facts.nodes.get(key), facts.ethereum_block, members) for key in signer_keys)
        report = MembershipReport(facts.registry, self.cluster_id, facts.ethereum_block, len(validator_keys),
                                  len(members), judged, facts.slasher)
        if len(report.counted) <= report.needed:
            raise VerificationError("membership", self._refusal(report, height))
        return report

    def _judge(self, key: bytes, state: NodeState | None, block: int, member_ids: list[int]) -> SignerFact:
        address = hashlib.sha256(key).digest()[:20].hex().upper()
        if state is None:
            return SignerFact(address, key.hex(), 0, None, 0, "none", 0, 0, False,
                              "no node registered this validator key in the Registry")
        counted, reason = self._decide(state, block, member_ids)
        return SignerFact(address, key.hex(), state.node_id, state.operator, state.deposit_wei, state.status,
                          state.cluster_id, state.withdrawable_block, counted, reason)

    def _decide(self, s: NodeState, block: int, member_ids: list[int]) -> tuple[bool, str]:
        if s.cluster_id == 0:
            return False, f"node {s.node_id} never joined a cluster"
        if s.cluster_id != self.cluster_id:
            return False, f"node {s.node_id} belongs to cluster {s.cluster_id}, not {self.cluster_id}"
        if s.status == "active":
            if s.member_until == 0 and s.node_id in member_ids:
                return True, "active member"
            return False, f"node {s.node_id} is active but not a member of cluster {self.cluster_id} now"
        if s.status in ("leaving", "ejected"):
            how = "left" if s.status == "leaving" else "was ejected"
            cooling = (f"in its cooling-off until block {s.withdrawable_block}" if block < s.withdrawable_block
                       else f"its cooling-off ended at block {s.withdrawable_block}")
            return False, (f"node {s.node_id} is {s.status}: it is no longer a member (it {how} at block "
                           f"{s.leave_block}; {cooling}), so it does not vouch for headers")
        if s.status == "withdrawn":
            return False, f"node {s.node_id} has withdrawn its deposit"
        return False, f"node {s.node_id} has status {s.status}"

    def _refusal(self, report: MembershipReport, height: int | None) -> str:
        header = f"header {height}" if height is not None else "the header"
        counted = len(report.counted)
        message = (f"only {counted} of the {len(report.signers)} signers of {header} "
                   f"{'is an active member' if counted == 1 else 'are active members'} of cluster {self.cluster_id} "
                   f"in Registry {report.registry} (Ethereum block {report.ethereum_block}); more than 2/3 of "
                   f"{report.basis_text()} is needed, i.e. at least {report.needed + 1}")
        if report.validator_set_size < report.active_members:
            message += (f" (the header's validator set has only {report.validator_set_size} while the cluster has "
                        f"{report.active_members} active members: a set smaller than the cluster cannot stand for it)")
        if report.active_members == 0:
            message += f" (cluster {self.cluster_id} has no active members: is the cluster id right?)"
        if report.not_counted:
            message += ". Not counted: " + "; ".join(f"{s.validator_address}: {s.reason}" for s in report.not_counted)
        return message + (". Do not trust this result: ask another node of the cluster, and check that the "
                          "Registry address and cluster id name the cluster this node belongs to.")


def signer_keys(verified: VerifiedCommit, validators: Sequence[Validator]) -> list[bytes]:
    """The public keys of the validators whose signatures `verify_commit` checked."""
    return [validators[s.index].pub_key for s in verified.signers]


def _n(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _ether(wei: int) -> str:
    """Exact ether amount, at least one decimal: 10.0, 1.25, 0.000000000000000001."""
    text = format(Decimal(wei) / Decimal(ETHER), "f")
    if "." not in text:
        return text + ".0"
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def _deposits(facts: list[SignerFact]) -> str:
    amounts = sorted({f.deposit_wei for f in facts})
    if not amounts:
        return "none"
    if len(amounts) == 1:
        return f"{_ether(amounts[0])} ETH" + (" each" if len(facts) > 1 else "")
    return f"{_ether(amounts[0])} to {_ether(amounts[-1])} ETH"
