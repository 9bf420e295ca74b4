"""The compiled artifact on the devnet's chain: deployed to anvil over plain JSON-RPC, one
node's life (register, ask to join, admitted by the cluster's owner, leave, early withdrawal refused with its reason, withdraw at
the boundary block), membership read at an earlier block, and gas used per transaction."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from rtc.ethereum import Anvil

from .helpers import MIN_DEPOSIT, decode_reason, key

COOLING_OFF = 5
CODE_HASH = b"\x33" * 32
REFERENCE = b"\x44" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Chain:
    def __init__(self, url: str) -> None:
        self.url = url
        self.accounts: list[str] = self.rpc("eth_accounts")

    def request(self, method: str, *params: object) -> dict:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def rpc(self, method: str, *params: object):
        answer = self.request(method, *params)
        assert "error" not in answer, answer
        return answer["result"]

    def block(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def send(self, sender: str, data: bytes, to: str | None = None, value: int = 0) -> dict:
        tx = {"from": sender, "data": "0x" + data.hex(), "value": hex(value), "gas": hex(5_000_000)}
        if to:
            tx["to"] = to
        tx_hash = self.rpc("eth_sendTransaction", tx)
        deadline = time.monotonic() + 10
        while (receipt := self.rpc("eth_getTransactionReceipt", tx_hash)) is None:
            assert time.monotonic() < deadline, f"no receipt for {tx_hash}"
            time.sleep(0.01)
        assert receipt["status"] == "0x1", receipt
        return receipt


def calldata(signature: str, types: list[str], *args: object) -> bytes:
    return keccak(text=signature)[:4] + abi_encode(types, list(args))


def test_a_node_lifecycle_on_anvil(compiled_registry, tmp_path) -> None:
    artifact = compiled_registry.artifact
    with Anvil(free_port(), log_path=tmp_path / "anvil.log") as anvil:
        chain = Chain(anvil.url)
        owner, operator = chain.accounts[0], chain.accounts[1]
        gas: dict[str, int] = {}

        ctor = abi_encode(["uint256", "uint256"], [MIN_DEPOSIT, COOLING_OFF])
        receipt = chain.send(owner, bytes.fromhex(artifact["bytecode"][2:]) + ctor)
        registry = receipt["contractAddress"]
        gas["deploy"] = int(receipt["gasUsed"], 16)

        def call(data: bytes, sender: str = owner, block: str = "latest") -> bytes:
            return bytes.fromhex(chain.rpc("eth_call", {"from": sender, "to": registry, "data": "0x" + data.hex()},
                                           block)[2:])

        def send(name: str, data: bytes, sender: str, value: int = 0) -> dict:
            receipt = chain.send(sender, data, registry, value)
            gas[name] = int(receipt["gasUsed"], 16)
            return receipt

        receipt = send("register", calldata("register(bytes32)", ["bytes32"], key(1)), operator, MIN_DEPOSIT)
        (log,) = receipt["logs"]
        assert log["topics"] == [
            "0x" + keccak(text="NodeRegistered(uint256,address,bytes32,uint256)").hex(),
            "0x" + (1).to_bytes(32, "big").hex(),
            "0x" + bytes.fromhex(operator[2:].rjust(64, "0")).hex(),
            "0x" + key(1).hex(),
        ]
        assert int(log["data"], 16) == MIN_DEPOSIT

        send("top_up", calldata("top_up(uint256)", ["uint256"], 1), operator, 1)
        send("create_cluster", calldata("create_cluster(bytes,bytes32,uint256)", ["bytes", "bytes32", "uint256"],
                                        REFERENCE, CODE_HASH, 4), owner)
        send("request_join", calldata("request_join(uint256,uint256)", ["uint256", "uint256"], 1, 1), operator)
        receipt = send("approve_join", calldata("approve_join(uint256)", ["uint256"], 1), owner)
        joined_at = int(receipt["blockNumber"], 16)
        assert [log["topics"][0] for log in receipt["logs"]] == [
            "0x" + keccak(text="JoinApproved(uint256,uint256,address,bool,uint256,uint256)").hex(),
            "0x" + keccak(text="NodeJoined(uint256,uint256,bytes32)").hex(),
        ]
        receipt = send("request_leave", calldata("request_leave(uint256)", ["uint256"], 1), operator)
        left_at = int(receipt["blockNumber"], 16)
        assert left_at == joined_at + 1  # anvil mines one block per transaction

        # membership at the joining block, read from the latest state
        members_at = calldata("members_at(uint256,uint256)", ["uint256", "uint256"], 1, joined_at)
        assert abi_decode(["uint256[]"], call(members_at)) == ((1,),)
        assert abi_decode(["uint256[]"], call(calldata("members(uint256)", ["uint256"], 1))) == ((),)
        # ... or from the state at that block
        members_then = call(calldata("members(uint256)", ["uint256"], 1), block=hex(joined_at))
        assert abi_decode(["uint256[]"], members_then) == ((1,),)

        node_type = "(address,bytes32,uint256,uint8,uint256,uint256,uint256,uint256,uint256,uint256)"
        (node,) = abi_decode([node_type], call(calldata("node(uint256)", ["uint256"], 1)))
        assert node == (operator.lower(), key(1), MIN_DEPOSIT + 1, 2, 1, node[5], joined_at, left_at, left_at,
                        left_at + COOLING_OFF)

        # an early withdrawal is refused with a reason a CLI can show; eth_call runs in the latest block
        withdraw = calldata("withdraw(uint256)", ["uint256"], 1)
        answer = chain.request("eth_call", {"from": operator, "to": registry, "data": "0x" + withdraw.hex()}, "latest")
        assert answer["error"]["code"] == 3
        assert decode_reason(bytes.fromhex(answer["error"]["data"][2:])) == (
            f"cooling-off not over: withdrawable at block {left_at + COOLING_OFF}")

        # a transaction sent now is mined in the next block: the boundary block itself succeeds
        chain.rpc("anvil_mine", hex(left_at + COOLING_OFF - 1 - chain.block()))
        assert chain.block() == left_at + COOLING_OFF - 1
        before = int(chain.rpc("eth_getBalance", operator, "latest"), 16)
        receipt = send("withdraw", withdraw, operator)
        assert int(receipt["blockNumber"], 16) == left_at + COOLING_OFF
        fee = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        assert int(chain.rpc("eth_getBalance", operator, "latest"), 16) == before + MIN_DEPOSIT + 1 - fee
        assert int(chain.rpc("eth_getBalance", registry, "latest"), 16) == 0

        print("gas used per transaction on anvil:", gas)
        assert gas["register"] < 250_000
        assert gas["request_join"] < 100_000
        assert gas["approve_join"] < 200_000
        assert gas["request_leave"] < 150_000
        assert gas["withdraw"] < 100_000
