"""A result a client can believe without trusting the node that served it: the pure check.

The node answers with the result record and a Merkle proof against the state at height
H. That state's root is the `app_hash` in header H+1, and header H+1 is believed only if
it was signed by validators the client trusts (`TrustPolicy`): more than 2/3 of the voting
power of a fixed validator set, or more than 2/3 of the cluster's staked members in the
Registry contract. Fetching what the node, Ethereum and Swarm say (`ResultEvidence`,
`AsyncClient.evidence`) is apart from deciding what to believe (`verify`), which does no
I/O: a receipt can be re-checked offline from its evidence.

`verify` never raises for what the evidence holds: the receipt lists every check it made,
each with the assumption it rests on, and stops at the first that fails; `Receipt.result`
is set only when every required check passed, so an unverified value is never handed out.
Re-checking a receipt offline re-derives everything from the node's own bytes; the
Registry's facts and the Swarm finding in the evidence are taken as they were fetched
(from the client's own Ethereum endpoint and Swarm).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any, Protocol

from rtc.cometbft import GenesisDoc
from rtc.cometbft.lightclient import VerificationError, VerifiedCommit, parse_signed_header, parse_validators, verify_commit
from rtc.protocol import Proof, ProofError, RecordError, ResultRecord, check_proof, keys, queries

from .membership import MembershipReport, RegistryFacts, signer_keys
from .results import CallResult
from .trust import TrustPolicy
from .validation import AttestationFacts, AttestationReport, ValidationStatus, judge_attestations


class HistoryFinding(Protocol):
    """Whether the block that wrote a result is in Swarm (`rtc.history.reader.HistoryStatus`)."""

    in_swarm: bool
    height: int
    newest_uploaded: int
    anchor: bytes  # the block hash its records were linked up to
    record: bytes | None
    note: str

    def to_json(self) -> dict[str, object]: ...


class HistoryCheck(Protocol):
    """Finds a block's record in Swarm, linked record by record up to a block the client holds the
    hash of (`rtc.history.reader.HistoryReader` is one); blocking, raises ValueError on a broken link."""

    def locate(self, written: int, verified_height: int, block_hash: bytes) -> HistoryFinding: ...


@dataclass(frozen=True)
class HistoryUnavailable:
    """A history check that could not be made (Swarm unreachable): reported, not failed."""

    height: int
    anchor: bytes
    note: str
    in_swarm: bool = False
    newest_uploaded: int = 0
    record: bytes | None = None

    def to_json(self) -> dict[str, object]:
        return {"in_swarm": False, "height": self.height, "anchor": self.anchor.hex(), "note": self.note}


@dataclass(frozen=True)
class Check:
    """One thing the client established itself, and what it rests on."""

    name: str  # answer, header, validator_set, signatures, registry, state_proof, final, history
    passed: bool
    detail: str
    assumption: str = ""  # what must be true for a pass to mean what `detail` says
    kind: str = ""  # for a failure: VerificationError's kind (e.g. "bad_signature")
    required: bool = True  # a check that is not required informs without failing the receipt

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "assumption": self.assumption,
                "kind": self.kind, "required": self.required}


@dataclass(frozen=True)
class ResultEvidence:
    """Everything the node (and Ethereum, and Swarm) said about one result, not yet believed."""

    session: bytes
    counter: int
    answer: dict[str, Any]  # the node's `abci_query` response for the result, with its proof, at height H
    signed_header: dict[str, Any]  # header H+1 and its commit (`/commit`)
    validators: dict[str, Any]  # the validator set of H+1 (`/validators`)
    node_chain_id: str  # the chain the node says it runs
    genesis: GenesisDoc | None = None  # the genesis the node served, for trust on first use
    registry: RegistryFacts | None = None  # the contract's facts about the signers' keys
    registry_error: str | None = None  # why there are no such facts (endpoint down, a set too large)
    history: HistoryFinding | None = None  # where the result's block is in Swarm
    history_error: str | None = None  # a record in Swarm that did not check out
    attestations: bytes | None = None  # the attestation transaction of the state at H (in block H+3)
    attestation_facts: AttestationFacts | None = None  # the members' attesters, from the client's Ethereum
    validation: ValidationStatus | None = None  # how far batch validation has got
    validation_error: str | None = None  # why the contract could not be read


@dataclass(frozen=True)
class Signature:
    address: bytes
    power: int

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address.hex().upper(), "power": self.power}


@dataclass(frozen=True)
class Receipt:
    """A result and the checks that make it believable (or the first that failed)."""

    session: bytes
    counter: int
    checks: tuple[Check, ...]
    result: CallResult | None  # set only when every required check passed
    state_height: int
    app_hash: bytes | None = None
    signers: tuple[Signature, ...] = ()
    signed_power: int = 0
    total_power: int = 0
    membership: MembershipReport | None = None  # the Registry's facts about the signers, when asked
    history: HistoryFinding | None = None
    trust: str = ""  # TrustPolicy.describe()
    verify_ms: float = 0.0  # the checks alone, without fetching
    attestations: AttestationReport | None = None  # members' attestations of the state, when they passed
    validation: ValidationStatus | None = None  # batch validation's progress, when the policy names the contract

    @property
    def validated(self) -> bool:
        """Whether batch validators re-executed the block that wrote the result."""
        return self.result is not None and self.validation is not None and self.validation.covers(self.result.height)

    @property
    def header_height(self) -> int:
        return self.state_height + 1

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def failure(self) -> Check | None:
        return next((c for c in self.checks if c.required and not c.passed), None)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def raise_for_failure(self) -> "Receipt":
        """Itself when verified, else VerificationFailed naming the check that failed."""
        failure = self.failure
        if failure is not None:
            raise VerificationFailed(self, failure)
        return self

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": self.ok, "session": self.session.hex(), "counter": self.counter,
            "result": self.result.to_json() if self.result is not None else None,
            "state_height": self.state_height, "header_height": self.header_height,
            "app_hash": self.app_hash.hex() if self.app_hash else None, "signers": [s.to_json() for s in self.signers],
            "signed_power": self.signed_power, "total_power": self.total_power, "trust": self.trust,
            "checks": [c.to_json() for c in self.checks], "verify_ms": round(self.verify_ms, 2),
        }
        if self.history is not None:
            data["history"] = self.history.to_json()
        if self.membership is not None:  # absent, not empty, when the contract was not asked
            data["members"] = [s.to_json() for s in self.membership.counted]
            data["contract"] = self.membership.to_json()
        if self.attestations is not None:
            data["attestations"] = self.attestations.to_json()
        if self.validation is not None:
            data["validation"] = {"validated_height": self.validation.validated_height,
                                  "lag_blocks": self.validation.lag_blocks, "lag_txs": self.validation.lag_txs,
                                  "validated": self.validated}
            data["disputes"] = {"court": self.validation.court, "frozen_at": self.validation.frozen_at,
                                "all": [d.to_json() for d in self.validation.disputes]}
        return data


class VerificationFailed(VerificationError):
    """A receipt whose required checks did not all pass; `receipt` holds every check made."""

    def __init__(self, receipt: Receipt, failure: Check) -> None:
        super().__init__(failure.kind or failure.name, f"{failure.name}: {failure.detail}")
        self.receipt = receipt
        self.check = failure


# VerificationError kinds of `verify_commit`, by the check that reports them.
_HEADER_KINDS = {"malformed", "chain_id", "height", "header_hash"}
_VALIDATOR_SET_KINDS = {"validators_hash", "validator_set", "unsupported_key"}


class _Stop(Exception):
    """A required check failed: the receipt ends there."""


class _Checks:
    def __init__(self) -> None:
        self.items: list[Check] = []

    def passed(self, name: str, detail: str, assumption: str = "") -> None:
        self.items.append(Check(name, True, detail, assumption))

    def failed(self, name: str, exc: Exception, assumption: str = "") -> _Stop:
        kind = exc.kind if isinstance(exc, VerificationError) else "malformed"
        self.items.append(Check(name, False, str(exc), assumption, kind))
        return _Stop()


def verify(evidence: ResultEvidence, trust: TrustPolicy) -> Receipt:
    """Decide what the evidence proves under `trust`, with no I/O."""
    started = time.perf_counter()
    checks = _Checks()
    answer = evidence.answer if isinstance(evidence.answer, dict) else {}
    state_height = _int(answer.get("height"))
    facts: dict[str, Any] = {}
    try:
        proof, value = _proof(evidence, checks)
        verified, validators = _commit(evidence, trust, state_height, checks)
        facts.update(app_hash=verified.app_hash, signers=tuple(Signature(s.address, s.voting_power) for s in verified.signers),
                     signed_power=verified.signed_power, total_power=verified.total_power)
        if trust.validation is not None:  # first: a ruling against the state says more than who signed it
            _disputes(evidence.validation, state_height, checks)
        if trust.contract is not None:
            facts["membership"] = _registry(evidence, trust, verified, validators, checks)
        try:
            check_proof(verified.app_hash, proof)
        except ProofError as exc:
            raise checks.failed("state_proof", VerificationError("proof", f"the Merkle proof does not lead to the signed "
                                                                          f"app_hash: {exc}"))
        checks.passed("state_proof", f"the Merkle proof leads to app_hash {verified.app_hash.hex()[:16]}… "
                                     f"of header {state_height + 1}", "nothing beyond the signed header")
        record = _final(value, evidence.counter, checks)
        if evidence.history_error is not None:
            raise checks.failed("history", VerificationError("history", evidence.history_error))
        if evidence.history is not None:
            _history(evidence.history, verified, record, state_height, checks)
        if trust.validation is not None:
            facts["attestations"] = _attestations(evidence, verified, state_height, checks)
            facts["validation"] = _validation(evidence, trust, record, checks)
        result = CallResult(evidence.session, evidence.counter, record)
    except _Stop:
        result = None
    return Receipt(evidence.session, evidence.counter, tuple(checks.items), result, state_height,
                   history=evidence.history, trust=trust.describe(), verify_ms=(time.perf_counter() - started) * 1000,
                   **facts)


def _proof(evidence: ResultEvidence, checks: _Checks) -> tuple[Proof, bytes]:
    answer = evidence.answer
    try:
        if not isinstance(answer, dict):
            raise VerificationError("malformed", "the node's answer is not a JSON object")
        if int(answer.get("code", 0)) != 0:
            raise VerificationError("malformed", f"the node refused the query: {answer.get('log', '')}")
        value = base64.b64decode(answer.get("value") or "")
        ops = (answer.get("proofOps") or answer.get("proof_ops") or {}).get("ops") or []
        if len(ops) != 1 or ops[0].get("type") != queries.PROOF_OP_TYPE:
            raise VerificationError("malformed", f"the node's answer carries no {queries.PROOF_OP_TYPE} proof")
        try:
            proof = Proof.from_bytes(base64.b64decode(ops[0]["data"]))
        except (ProofError, ValueError) as exc:
            raise VerificationError("malformed", f"the proof cannot be decoded: {exc}") from None
        if proof.key != keys.result_key(evidence.session, evidence.counter):
            raise VerificationError("malformed", "the proof is for another key than (session, counter)")
        if (proof.value or b"") != value:
            raise VerificationError("malformed", "the proof is for another value than the one returned")
        if proof.value is None:
            raise VerificationError("malformed", f"no result is recorded for counter {evidence.counter} "
                                                 "(the proof claims its absence)")
    except (VerificationError, ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise checks.failed("answer", exc) from None
    checks.passed("answer", "the proof names this session and counter and the returned record")
    return proof, value


def _commit(evidence: ResultEvidence, trust: TrustPolicy, state_height: int,
            checks: _Checks) -> tuple[VerifiedCommit, tuple[Any, ...]]:
    header_height = state_height + 1
    chain, chain_source = _chain(evidence, trust)
    try:
        trusted_hash, set_source = _trusted_set(evidence, trust)
    except (VerificationError, ValueError) as exc:
        raise checks.failed("validator_set", exc) from None
    try:
        validators = parse_validators(evidence.validators)
        if trusted_hash is None:  # the header's own hash: the served set is consistent with it, not yet trusted
            trusted_hash = parse_signed_header(evidence.signed_header).header.validators_hash
        verified = verify_commit(chain, evidence.signed_header, validators, trusted_hash, height=header_height)
    except VerificationError as exc:
        name = "header" if exc.kind in _HEADER_KINDS else "validator_set" if exc.kind in _VALIDATOR_SET_KINDS \
            else "signatures"
        raise checks.failed(name, exc) from None
    checks.passed("header", f"header {header_height} is for chain {chain} and hashes to the block id its commit signs",
                  f"the chain id comes from {chain_source}")
    if set_source is not None:
        checks.passed("validator_set", "the header's validator set is the trusted one", f"trust in {set_source}")
    else:
        checks.passed("validator_set", "the validator set the node served hashes to the header's validators_hash",
                      "consistent only: the Registry check below is what makes the signers trusted")
    checks.passed("signatures", f"{len(verified.signers)} validators signed with {verified.signed_power} of "
                                f"{verified.total_power} voting power (more than 2/3), every signature verified "
                                "over CometBFT's canonical vote bytes",
                  "fewer than 1/3 of that voting power signs falsely (CometBFT's own assumption)")
    return verified, validators


def _chain(evidence: ResultEvidence, trust: TrustPolicy) -> tuple[str, str]:
    if trust.chain_id is not None:
        return trust.chain_id, "the trust policy"
    if evidence.genesis is not None:
        return evidence.genesis.chain_id, "the genesis the node served (trust on first use)"
    return evidence.node_chain_id, "the node's own report (staked members must have signed for it)"


def _trusted_set(evidence: ResultEvidence, trust: TrustPolicy) -> tuple[bytes | None, str | None]:
    if trust.validators_hash is not None:
        return trust.validators_hash, trust.validators_source or "a pinned validator set hash"
    if trust.trust_on_first_use:
        if evidence.genesis is None:
            raise ValueError("trust on first use needs the genesis the node serves in the evidence")
        return evidence.genesis.validators_hash(), "the genesis validator set the node served (trust on first use)"
    return None, None


def _registry(evidence: ResultEvidence, trust: TrustPolicy, verified: VerifiedCommit, validators: tuple[Any, ...],
              checks: _Checks) -> MembershipReport:
    contract = trust.contract
    assert contract is not None
    assumption = contract.assumption(evidence.registry.slasher if evidence.registry is not None else None)
    try:
        if evidence.registry is None:
            raise VerificationError("contract_unavailable", evidence.registry_error
                                    or "the evidence holds no facts from the Registry")
        report = contract.judge(evidence.registry, [v.pub_key for v in validators], signer_keys(verified, validators),
                                verified.height)
    except VerificationError as exc:
        raise checks.failed("registry", exc, assumption) from None
    checks.passed("registry", report.check_line(), assumption)
    return report


def _final(value: bytes, counter: int, checks: _Checks) -> ResultRecord:
    try:
        record = ResultRecord.decode(value)
    except RecordError as exc:
        raise checks.failed("final", VerificationError("malformed", str(exc))) from None
    if not record.final:
        raise checks.failed("final", VerificationError("not_final", f"call {counter} is {record.status.value}: "
                                                                   "no final result to verify yet"))
    checks.passed("final", f"the record is final: {record.status.value}, written by block {record.height}")
    return record


def _history(finding: HistoryFinding, verified: VerifiedCommit, record: ResultRecord, state_height: int,
             checks: _Checks) -> None:
    assumption = "chunks are checked against their Swarm addresses; the verified header anchors the records"
    if finding.anchor != verified.header.last_block_id.hash or finding.height != record.height:
        raise checks.failed("history", VerificationError("history", "the Swarm finding is about another block than "
                                                                    "the verified record and header"), assumption)
    if not finding.in_swarm:
        checks.items.append(Check("history", False, f"block {finding.height} is not in Swarm yet ({finding.note})",
                                  assumption, "not_uploaded", required=False))
        return
    reference = finding.record.hex()[:12] if finding.record else "?"
    checks.passed("history", f"the record of block {record.height} is in Swarm ({reference}…) and links, record by "
                             f"record, to block {state_height}, which header {state_height + 1} names", assumption)


def _attestations(evidence: ResultEvidence, verified: VerifiedCommit, state_height: int,
                  checks: _Checks) -> AttestationReport | None:
    """Informs, never fails a receipt: the members' CometBFT signatures already carry it."""
    assumption = ("the attester keys the Registry names for the cluster's current members (read through your "
                  "Ethereum endpoint); these signatures are what the Validation contract takes as a checkpoint")
    if evidence.attestation_facts is None or evidence.attestations is None:
        why = evidence.validation_error or f"block {state_height + 3} carries no attestations of height {state_height}"
        checks.items.append(Check("attestations", False, why, assumption, "not_attested", required=False))
        return None
    try:
        report = judge_attestations(evidence.attestation_facts, evidence.attestations, state_height,
                                    verified.app_hash)
    except VerificationError as exc:
        checks.items.append(Check("attestations", False, str(exc), assumption, exc.kind, required=False))
        return None
    signers = ", ".join("0x" + s.hex()[:8] + "…" for s in report.signers)
    checks.passed("attestations", f"{len(report.signers)} of the {report.members} members attested state "
                                  f"{state_height} (app_hash {report.app_hash.hex()[:16]}…, record "
                                  f"{report.record.hex()[:12]}…) with their Ethereum keys: {signers}", assumption)
    return report


def _validation(evidence: ResultEvidence, trust: TrustPolicy, record: ResultRecord,
                checks: _Checks) -> ValidationStatus | None:
    assert trust.validation is not None
    assumption = trust.validation.assumption()
    status = evidence.validation
    if status is None:
        checks.items.append(Check("validation", False, evidence.validation_error or "the Validation contract was "
                                  "not read", assumption, "contract_unavailable", required=False))
        return None
    if status.covers(record.height):
        checks.passed("validation", f"block {record.height} is at or below validated_height {status.validated_height}: "
                                    "validators drawn from outside the cluster re-executed it", assumption)
    else:
        checks.items.append(Check("validation", False, f"not validated yet: block {record.height} is above "
                                  f"validated_height {status.validated_height} (lag {status.lag_blocks} blocks, "
                                  f"{status.lag_txs} transactions)", assumption, "not_validated", required=False))
    return status


def _disputes(status: ValidationStatus | None, height: int, checks: _Checks) -> None:
    """Refuse a state (and every result proven against it) that an open dispute, an invalid
    ruling or a freeze puts in doubt."""
    if status is None:  # the Validation contract could not be read (the validation check says why)
        checks.items.append(Check("disputes", False, "the Disputes contract was not read: whether a dispute covers "
                                  f"height {height} is unknown", kind="contract_unavailable", required=False))
        return
    if status.court is None:
        checks.passed("disputes", "the Validation contract names no Disputes contract: nobody can dispute this "
                                  "cluster's state, and no ruling covers it",
                      "nothing: without a court a lie costs the liars nothing")
        return
    assumption = (f"your Ethereum endpoint reports the chain truthfully and {status.court} is the court the Validation "
                  "contract's deployer named; a ruling is right while less than 1/3 of the validator pool's stake "
                  "colludes")
    if status.frozen_at is not None and height > status.frozen_at:
        ruling = next((d for d in status.disputes if d.status == "invalid" and d.agreed), None)
        which = f"dispute {ruling.dispute_id}" if ruling is not None else "a dispute"
        raise checks.failed("disputes", VerificationError(
            "disputed", f"{which} ruled the cluster's state invalid and froze it at height {status.frozen_at}: "
                        f"the state after block {height} is void (`rtc dispute list`)"), assumption)
    covering = status.dispute_covering(height)
    if covering is not None:
        what = "is open" if covering.status == "open" else "ruled the state there invalid"
        raise checks.failed("disputes", VerificationError(
            "disputed", f"dispute {covering.dispute_id} about height {covering.height} {what}: the state after block "
                        f"{height} is not to be believed (`rtc dispute show {covering.dispute_id}`)"),
                            assumption)
    checks.passed("disputes", f"no open dispute covers height {height}", assumption)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
