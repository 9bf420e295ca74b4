"""What any client, in any language, needs to talk to a cluster and believe its answers.

`envelope` (the signed transaction), `codes` (result codes), `canonical` (the one JSON
encoding), `keys` (where things live in state), `records` (result and session records),
`queries` (query paths), `proof` (checking a value against `app_hash`) and `attestation`
(a member's EIP-712 statement of a state, imported on its own: it loads secp256k1). This package
imports nothing else from `rtc`; docs/protocol.md describes the same bytes in prose.
"""

from .canonical import JSONInputError, canonical_json, strict_json
from .codes import CODESPACE, Code
from .envelope import Envelope, EnvelopeError, Kind, SigningDomain, decode, sign, tx_digest
from .proof import Proof, ProofError, check_proof, verify_proof
from .records import FINAL, RecordError, ResultRecord, SessionRecord, SessionStatus, Status

__all__ = [
    "CODESPACE", "FINAL", "Code", "Envelope", "EnvelopeError", "JSONInputError", "Kind", "Proof", "ProofError",
    "RecordError", "ResultRecord", "SessionRecord", "SessionStatus", "SigningDomain", "Status", "canonical_json", "check_proof",
    "decode", "sign", "strict_json", "tx_digest", "verify_proof",
]
