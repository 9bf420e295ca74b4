"""What every contract client shares: its compiled artifact, deploying it, and sending a
transaction so that a refusal surfaces as `ContractRefused` with the contract's own reason
(for example "cooling-off not over: withdrawable at block 1234"), which the CLI shows as it is."""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, ClassVar, Self

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError

from .types import ContractRefused

# Package data: scripts/compile_contracts.py (run by `make setup`) writes it into
# src/rtc/ethereum/contracts/, and a wheel built after setup ships it.
ARTIFACTS: Traversable = resources.files("rtc.ethereum") / "contracts"


def load_artifact(path: Path | Traversable) -> dict[str, Any]:
    """A compiled contract (abi, bytecode, ...) from its artifact file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"the compiled contract {path} is missing: run `make setup` to compile the contracts "
            "(they are generated into src/rtc/ethereum/contracts/; build a wheel only after setup)")
    return json.loads(path.read_text())


class Contract:
    """One deployed contract, reached through an Ethereum JSON-RPC endpoint."""

    NAME: ClassVar[str]  # its source is contracts/<NAME>.vy, its artifact <NAME>.json

    def __init__(self, w3: Web3, address: str, artifact: dict[str, Any] | None = None,
                 account: LocalAccount | None = None) -> None:
        self.w3 = w3
        self.account = account  # signs its own transactions here; other senders must be unlocked at the endpoint
        abi = (artifact or self.artifact())["abi"]
        self.contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    @classmethod
    def artifact(cls) -> dict[str, Any]:
        return load_artifact(ARTIFACTS / f"{cls.NAME}.json")

    @property
    def address(self) -> str:
        return self.contract.address

    @classmethod
    def connect(cls, url: str, address: str, private_key: bytes | None = None) -> Self:
        """With `private_key`, that account's transactions are signed here: the endpoint never sees the key."""
        account = Account.from_key(private_key) if private_key is not None else None
        return cls(Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10})), address, account=account)

    @classmethod
    def _deploy(cls, w3: Web3, deployer: str, *arguments: Any) -> Self:
        artifact = cls.artifact()
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = factory.constructor(*arguments).transact({"from": deployer})
        receipt = w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise ContractRefused(f"deploying the {cls.NAME} contract failed")
        return cls(w3, receipt["contractAddress"], artifact)

    @property
    def signer(self) -> str | None:
        """The address whose transactions this client signs itself (None: the endpoint signs)."""
        return self.account.address if self.account is not None else None

    def _transact(self, sender: str, function: Any, value: int = 0) -> Any:
        """Send `function` from `sender` and wait for its receipt; its revert reason, if it would revert."""
        try:
            function.call({"from": sender, "value": value})
            if self.account is not None and sender.lower() == self.account.address.lower():
                tx = self._send_signed(self.account, function, value)
            else:
                tx = function.transact({"from": sender, "value": value})
        except ContractLogicError as exc:
            raise ContractRefused(_reason(exc)) from None
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise ContractRefused("the transaction reverted")
        return receipt

    def _send_signed(self, account: LocalAccount, function: Any, value: int) -> Any:
        """Fill in nonce, gas and fees from the chain, sign with the local key, send the raw transaction."""
        nonce = self.w3.eth.get_transaction_count(account.address, "pending")
        tx = function.build_transaction({"from": account.address, "value": value, "nonce": nonce})
        return self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)


def _reason(exc: ContractLogicError) -> str:
    message = str(exc.message if hasattr(exc, "message") else exc)
    return message.removeprefix("execution reverted: ") or "the contract refused (no reason given)"
