"""Client SDK: signed session calls, results by counter, verified receipts; async or blocking.

    from rtc.client import Client, TrustPolicy

    nodes = ["http://127.0.0.1:26601", "http://127.0.0.1:26611", "http://127.0.0.1:26621"]
    with Client(nodes, trust=TrustPolicy.from_genesis_file(path)) as cluster:  # or one URL
        session = cluster.session()
        session.call({"function": "update_high", "symbol": "AAPL", "value": 187.5})  # no waiting
        receipt = session.verified(0)  # every check made here; raises VerificationFailed otherwise
        receipt.result.value

Given several nodes of the cluster, the client fails over between them and resends a call
that a failed node swallowed (the same signed bytes), so its sessions survive the loss of
any one node. `AsyncClient` and `AsyncSession` have the same methods as coroutines. Verification is
`verify(evidence, trust)`, pure; `Receipt.checks` says what was checked and what each check
rests on. The SDK needs `rtc.protocol`, `rtc.cometbft` and (for the Registry check) web3.
"""

from rtc.cometbft import RPCError, RPCUnavailable, VerificationError

from .aio import AsyncClient, AsyncSession, ClusterFacts
from .membership import ContractCheck, MembershipReport
from .results import CallRejected, CallResult, QueryResult
from .sync import Client, Session
from .trust import TrustPolicy
from .validation import ValidationCheck, ValidationStatus
from .verify import Check, HistoryCheck, Receipt, ResultEvidence, VerificationFailed, verify

__all__ = [
    "AsyncClient", "AsyncSession", "CallRejected", "ClusterFacts", "CallResult", "Check", "Client", "ContractCheck", "HistoryCheck",
    "MembershipReport", "QueryResult", "RPCError", "RPCUnavailable", "Receipt", "ResultEvidence", "Session",
    "TrustPolicy", "ValidationCheck", "ValidationStatus", "VerificationError", "VerificationFailed", "verify",
]
