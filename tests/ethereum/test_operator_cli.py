"""`rtc node register|join|leave|withdraw|status` and `rtc cluster requests|approve|refuse` against a
real anvil: an operator's whole life of a node, its admission by the cluster's owner or members,
with accounts unlocked at the endpoint and with keys that sign locally, the contract's own
refusals, and the settings found in flags, node home or devnet manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from rtc.cometbft import NodeHome
from rtc.devnet.cometbft import init_home
from rtc.ethereum import Anvil
from rtc.ethereum.registry import Registry
from tests.helpers import rtc

ETHER = 10**18
COOLING_OFF = 5
ANVIL_PORT = 30411
UNUSED_PORT = 30498  # nothing listens here


class Chain:
    def __init__(self, url: str, w3: Web3, registry: Registry, cluster_id: int) -> None:
        self.url = url
        self.w3 = w3
        self.registry = registry
        self.cluster_id = cluster_id
        self._next_account = 1

    def account(self) -> str:
        """A fresh unlocked anvil account: one node per operator until it has withdrawn."""
        account = self.w3.eth.accounts[self._next_account]
        self._next_account += 1
        return account

    def flags(self) -> list[str]:
        return ["--eth-rpc", self.url, "--registry", self.registry.address]

    @property
    def owner(self) -> str:
        """Created the clusters: approves joins alone."""
        return self.w3.eth.accounts[0]

    def approve(self, node_id: int, *extra: object) -> tuple[int, str, str]:
        return rtc("cluster", "approve", node_id, *self.flags(), "--approver", self.owner, *extra)

    def mine_to(self, block: int) -> None:
        missing = block - self.w3.eth.block_number
        if missing > 0:
            self.w3.provider.make_request("anvil_mine", [hex(missing)])
        assert self.w3.eth.block_number >= block


@pytest.fixture(scope="module")
def chain(anvil: Anvil) -> Chain:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    owner = w3.eth.accounts[0]
    registry = Registry.deploy(w3, owner, min_deposit_wei=ETHER, cooling_off_blocks=COOLING_OFF)
    cluster_id = registry.create_cluster(owner, b"\x33" * 32, b"\x22" * 32, 8)
    return Chain(anvil.url, w3, registry, cluster_id)


def node_home(tmp_path: Path, name: str = "node0") -> Path:
    home = tmp_path / name
    init_home(home, name)
    return home


def node_of(chain: Chain, home: Path) -> int:
    return int(chain.registry.contract.functions.node_of_key(NodeHome(home).validator_key()).call())


def test_register_with_an_unlocked_account_then_a_second_registration_is_refused(chain: Chain, tmp_path: Path) -> None:
    home = node_home(tmp_path)
    operator = chain.account()
    code, out, err = rtc("node", "register", "--home", home, *chain.flags(), "--cluster-id", chain.cluster_id,
                         "--operator", operator)
    assert code == 0, err
    node_id = node_of(chain, home)
    assert node_id > 0 and f"registered node {node_id} and asked to join cluster {chain.cluster_id}" in out
    assert "deposit        10 ETH" in out and "status         active" in out
    assert f"asked to join cluster {chain.cluster_id} at block" in out and f"rtc cluster approve {node_id}" in out
    assert "registering validator key" in err and f"operator {operator}" in err  # each step is shown
    state = chain.registry.node(node_id)
    assert (state.operator, state.deposit_wei, state.status, state.cluster_id) == (operator, 10 * ETHER, "active", 0)
    assert node_id not in [m.node_id for m in chain.registry.members(chain.cluster_id)]  # until the cluster approves
    code, out, err = chain.approve(node_id)
    assert code == 0, err
    assert f"node {node_id} is a member of cluster {chain.cluster_id}" in out and "as the cluster's owner" in err
    assert node_id in [m.node_id for m in chain.registry.members(chain.cluster_id)]

    # the same key again, by another operator: the contract's own reason, exit status 2
    code, out, _ = rtc("node", "register", "--home", home, *chain.flags(), "--no-join", "--operator", chain.account())
    assert code == 2
    block = chain.w3.eth.block_number
    assert out.strip() == f"refused: validator key already registered (Ethereum is at block {block})"
    # the same operator with another key: refused as well
    code, out, _ = rtc("node", "register", "--home", node_home(tmp_path, "other"), *chain.flags(), "--no-join",
                       "--operator", operator, "-J")
    assert code == 2
    assert json.loads(out)["refused"] == "operator already has a node"


def test_register_signed_locally_with_settings_from_the_node_home(chain: Chain, tmp_path: Path) -> None:
    """A key the endpoint does not know, so only local signing can work; endpoint, Registry and
    cluster come from rtc.json and the genesis, as on a real node."""
    home = node_home(tmp_path)
    genesis_path = home / "config" / "genesis.json"
    genesis = json.loads(genesis_path.read_text())
    genesis["app_state"] = {"settings": {"ethereum": {"chain_id": 31337, "registry": chain.registry.address,
                                                      "cluster_id": chain.cluster_id, "confirmations": 2}}}
    genesis_path.write_text(json.dumps(genesis))
    (home / "rtc.json").write_text(json.dumps({"abci": "tcp://127.0.0.1:1", "backend": "app.wasm", "eth_rpc": chain.url}))
    account = Account.create()
    chain.w3.provider.make_request("anvil_setBalance", [account.address, hex(100 * ETHER)])
    key_file = tmp_path / "operator.key"
    key_file.write_text("0x" + bytes(account.key).hex() + "\n")
    key_file.chmod(0o600)

    code, out, err = rtc("node", "register", "--home", home, "--deposit", "2.5", "--operator-key", key_file, "-J")
    assert code == 0, err
    data = json.loads(out)
    assert data["deposit_wei"] == 25 * ETHER // 10 and data["status"] == "active" and data["member"] is False
    assert data["join_request"]["cluster_id"] == chain.cluster_id and data["operator"] == account.address
    assert chain.registry.node(data["node_id"]).operator == account.address
    assert "signed here" in err and "rtc.json" in err and "genesis" in err

    # the genesis names the chain: an endpoint on another chain is refused before anything is sent
    genesis["app_state"]["settings"]["ethereum"]["chain_id"] = 1
    genesis_path.write_text(json.dumps(genesis))
    code, _, err = rtc("node", "status", "--home", home)
    assert code == 1 and "is Ethereum chain 31337, but the node's genesis follows chain 1" in err


def test_leave_then_withdraw_refused_during_cooling_off_and_paid_after(chain: Chain, tmp_path: Path) -> None:
    home = node_home(tmp_path)
    operator = chain.account()
    assert rtc("node", "register", "--home", home, *chain.flags(), "--cluster-id", chain.cluster_id,
               "--operator", operator)[0] == 0
    node_id = node_of(chain, home)
    assert chain.approve(node_id)[0] == 0

    code, out, err = rtc("node", "leave", "--home", home, *chain.flags(), "--operator", operator)
    assert code == 0, err
    assert f"its membership of cluster {chain.cluster_id} has ended" in out
    withdrawable = chain.registry.node(node_id).withdrawable_block
    assert withdrawable == chain.w3.eth.block_number + COOLING_OFF
    assert f"withdrawable from Ethereum block {withdrawable}" in out
    assert chain.registry.node(node_id).status == "leaving"
    assert node_id not in [m.node_id for m in chain.registry.members(chain.cluster_id)]

    code, out, _ = rtc("node", "status", "--home", home, *chain.flags(), "-J")
    status = json.loads(out)
    assert code == 0 and status["status"] == "leaving" and status["withdrawable_block"] == withdrawable
    assert status["cooling_off"] is True and status["blocks_until_withdrawable"] == COOLING_OFF

    code, out, _ = rtc("node", "withdraw", "--home", home, *chain.flags(), "--operator", operator)
    block = chain.w3.eth.block_number
    assert code == 2
    assert out.strip() == f"refused: cooling-off not over: withdrawable at block {withdrawable} (Ethereum is at block {block})"
    assert chain.registry.node(node_id).status == "leaving"

    chain.mine_to(withdrawable)
    before = chain.w3.eth.get_balance(operator)
    code, out, err = rtc("node", "withdraw", "--home", home, *chain.flags(), "--operator", operator)
    assert code == 0, err
    assert f"paid 10 ETH to operator {operator}; node {node_id} is withdrawn" in out
    assert chain.registry.node(node_id).status == "withdrawn"
    assert chain.w3.eth.get_balance(operator) > before + 9 * ETHER

    code, out, _ = rtc("node", "leave", "--home", home, *chain.flags(), "--operator", operator)
    assert code == 2 and out.startswith("refused: node has withdrawn (Ethereum is at block")


def test_status_json_and_text(chain: Chain, tmp_path: Path) -> None:
    home = node_home(tmp_path)
    code, out, _ = rtc("node", "status", "--home", home, *chain.flags(), "-J")
    assert code == 0
    assert json.loads(out) == {"node_id": 0, "status": "none", "validator_key": NodeHome(home).validator_key().hex(),
                               "home": str(home.resolve()), "registry": chain.registry.address,
                               "ethereum_block": chain.w3.eth.block_number}

    operator = chain.account()
    assert rtc("node", "register", "--home", home, *chain.flags(), "--no-join", "--deposit", "1",
               "--operator", operator)[0] == 0
    code, out, _ = rtc("node", "status", "--home", home, *chain.flags(), "-J")
    data = json.loads(out)
    assert code == 0
    assert data["node_id"] == node_of(chain, home) and data["operator"] == operator
    assert (data["deposit_wei"], data["status"], data["cluster_id"], data["member"]) == (ETHER, "active", 0, False)
    assert (data["withdrawable_block"], data["cooling_off"], data["blocks_until_withdrawable"]) == (0, False, None)
    assert data["validator_key"] == NodeHome(home).validator_key().hex() and data["ethereum_block"] == chain.w3.eth.block_number

    code, out, _ = rtc("node", "status", "--home", home, *chain.flags())
    assert code == 0
    assert f"node {data['node_id']} in Registry {chain.registry.address}" in out
    assert "deposit        1 ETH" in out and "cluster        none (not joined)" in out


def test_settings_from_the_devnet_manifest(chain: Chain, tmp_path: Path) -> None:
    """A node home that `rtc devnet up` made needs no flags: the manifest names endpoint, Registry,
    cluster and the operator account of each node."""
    homes = [node_home(tmp_path, f"node{i}") for i in range(2)]
    operators = [chain.account(), chain.account()]
    manifest = {
        "chain_id": "rtc-devnet", "code_hash": "22" * 32,
        "nodes": [{"name": h.name, "home": str(h), "p2p_port": 1, "rpc_port": 2, "abci_port": 3} for h in homes],
        "ethereum": {"url": chain.url, "port": ANVIL_PORT, "registry": chain.registry.address,
                     "cluster_id": chain.cluster_id, "operators": operators, "node_ids": []},
    }
    (tmp_path / "devnet.json").write_text(json.dumps(manifest))
    code, out, err = rtc("node", "register", "--home", homes[1], "-J")
    assert code == 0, err
    data = json.loads(out)
    assert data["operator"] == operators[1] and data["join_request"]["cluster_id"] == chain.cluster_id
    assert "devnet" in err
    # the devnet folder names the cluster's owner (a manifest without it: anvil's first account)
    code, out, err = rtc("cluster", "approve", data["node_id"], "--home", tmp_path, "-J")
    assert code == 0, err
    assert json.loads(out)["joined"] is True and json.loads(out)["by_owner"] is True
    assert f"approver {chain.owner}" in err and "the cluster's owner" in err
    assert chain.registry.node(data["node_id"]).cluster_id == chain.cluster_id


def test_clear_errors_when_settings_are_missing_or_wrong(chain: Chain, tmp_path: Path) -> None:
    home = node_home(tmp_path)
    code, out, err = rtc("node", "status", "--home", home)
    assert code == 1 and out == ""
    assert err.strip() == (f"rtc: no Ethereum endpoint for {home.resolve()}: pass --eth-rpc URL "
                           f"(or set \"eth_rpc\" in {home.resolve() / 'rtc.json'})")

    code, _, err = rtc("node", "status", "--home", home, "--eth-rpc", chain.url)
    assert code == 1 and "no Registry address" in err and "--registry ADDRESS" in err

    code, _, err = rtc("node", "register", "--home", home, *chain.flags(), "--no-join")
    assert code == 1 and "no operator account" in err and "--operator-key FILE" in err and "--operator ADDRESS" in err

    code, _, err = rtc("node", "register", "--home", home, *chain.flags(), "--operator", chain.account())
    assert code == 1 and "no cluster to join" in err and "--cluster-id N" in err

    code, _, err = rtc("node", "register", "--home", home, *chain.flags(), "--cluster-id", 999,
                       "--operator", chain.account())
    assert code == 1 and "there is no cluster 999" in err and node_of(chain, home) == 0

    code, _, err = rtc("node", "status", "--home", home, "--eth-rpc", f"http://127.0.0.1:{UNUSED_PORT}",
                       "--registry", chain.registry.address)
    assert code == 1 and f"cannot reach the Ethereum endpoint http://127.0.0.1:{UNUSED_PORT}" in err

    code, _, err = rtc("node", "status", "--home", home, "--eth-rpc", chain.url, "--registry", "0x" + "11" * 20)
    assert code == 1 and "there is no contract at" in err

    code, _, err = rtc("node", "leave", "--home", home, *chain.flags(), "--operator", chain.account())
    assert code == 1 and "is not registered" in err and "rtc node register" in err

    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key\n")
    code, _, err = rtc("node", "withdraw", "--home", home, *chain.flags(), "--operator-key", bad_key)
    assert code == 1 and "does not hold a private key" in err

    code, _, err = rtc("node", "status", "--home", tmp_path / "nowhere", *chain.flags())
    assert code == 1 and "is not a node home" in err

    code, _, err = rtc("node", "register", "--home", home, "--deposit", "ten")  # argparse: ether, not a word
    assert code == 2 and "not a positive amount of ether" in err


def test_unknown_local_key_without_funds_is_a_clear_error(chain: Chain, tmp_path: Path) -> None:
    home = node_home(tmp_path)
    key_file = tmp_path / "operator.key"
    key_file.write_text(bytes(Account.create().key).hex())
    key_file.chmod(0o644)
    code, _, err = rtc("node", "register", "--home", home, *chain.flags(), "--no-join", "--operator-key", key_file)
    assert code == 1
    assert "other users may read the operator key" in err
    assert f"the Ethereum endpoint {chain.url} refused the request" in err and "nsufficient funds" in err
    assert node_of(chain, home) == 0


def test_the_cluster_admits_by_its_members_or_its_owner_and_the_owner_refuses(chain: Chain, tmp_path: Path) -> None:
    cluster_id = chain.registry.create_cluster(chain.owner, b"\x35" * 32, b"\x22" * 32, 8)
    flags = [*chain.flags(), "--cluster-id", cluster_id]
    operators = [chain.account() for _ in range(5)]
    ids = []
    for i, operator in enumerate(operators):
        home = node_home(tmp_path, f"n{i}")
        assert rtc("node", "register", "--home", home, *flags, "--no-join", "--operator", operator)[0] == 0
        if i < 3:
            code, out, err = rtc("node", "join", "--home", home, *flags, "--operator", operator)
            assert code == 0, err
            assert "asked to join cluster" in out
            assert chain.approve(node_of(chain, home), "--cluster-id", cluster_id)[0] == 0
        ids.append(node_of(chain, home))
    assert [m.node_id for m in chain.registry.members(cluster_id)] == ids[:3]

    # the fourth asks; the members' operators approve: 2 of 3 do not admit, 3 do
    assert rtc("node", "join", "--home", tmp_path / "n3", *flags, "--operator", operators[3])[0] == 0
    code, out, _ = rtc("cluster", "requests", *flags, "-J")
    listed = json.loads(out)
    assert code == 0 and (listed["owner"], listed["needed"]) == (chain.owner, 3)
    assert [(r["node_id"], r["approvals"], r["operator"]) for r in listed["requests"]] == [(ids[3], [], operators[3])]
    for voter, count in ((0, 1), (1, 2)):
        code, out, err = rtc("cluster", "approve", ids[3], *flags, "--approver", operators[voter])
        assert code == 0, err
        assert f"approval recorded: node {ids[3]} has {count} of the 3 members' approvals" in out
        assert f"as the operator of node {ids[voter]}" in err
    code, out, _ = rtc("cluster", "approve", ids[3], *flags, "--approver", operators[0])
    assert code == 2 and "refused: already approved (2 of the 3 approvals needed so far)" in out
    code, out, _ = rtc("cluster", "approve", ids[3], *flags, "--approver", operators[2], "-J")
    assert code == 0 and json.loads(out)["joined"] is True and json.loads(out)["by_owner"] is False
    assert json.loads(rtc("cluster", "requests", *flags, "-J")[1])["requests"] == []

    # the fifth asks: a member cannot refuse, the owner can; its operator may ask again and withdraw
    home = tmp_path / "n4"
    assert rtc("node", "join", "--home", home, *flags, "--operator", operators[4])[0] == 0
    code, out, _ = rtc("cluster", "refuse", ids[4], *flags, "--approver", operators[0])
    assert code == 2 and "caller is neither the node's operator nor the cluster's owner" in out
    code, out, err = rtc("cluster", "refuse", ids[4], *flags, "--approver", chain.owner)
    assert code == 0, err
    assert f"node {ids[4]}'s request to join cluster {cluster_id} is refused" in out
    code, _, err = chain.approve(ids[4])
    assert code == 1 and f"node {ids[4]} has no pending request to join a cluster" in err and "rtc node join" in err
    assert rtc("node", "join", "--home", home, *flags, "--operator", operators[4])[0] == 0
    code, _, err = chain.approve(ids[4], "--cluster-id", chain.cluster_id)
    assert code == 1 and f"asks to join cluster {cluster_id}, not cluster {chain.cluster_id}" in err
    code, out, _ = rtc("node", "status", "--home", home, *chain.flags())
    assert f"asked to join cluster {cluster_id} at block" in out and "0 of the 3 members' approvals" in out
    code, out, err = rtc("node", "join", "--home", home, *flags, "--operator", operators[4], "--cancel", "-J")
    assert code == 0, err
    assert json.loads(out)["join_request"] is None and chain.registry.join_request(ids[4]) is None
    assert [m.node_id for m in chain.registry.members(cluster_id)] == ids[:4]


def test_cluster_commands_explain_missing_settings(chain: Chain, tmp_path: Path) -> None:
    code, _, err = rtc("cluster", "approve", "1")
    assert code == 1 and "no Ethereum endpoint: pass --eth-rpc URL" in err
    code, _, err = rtc("cluster", "approve", "1", *chain.flags())
    assert code == 1 and "no approving account" in err and "--approver-key FILE" in err
    code, _, err = rtc("cluster", "requests", *chain.flags())
    assert code == 1 and "which cluster? pass --cluster-id N" in err
    code, _, err = rtc("cluster", "approve", "999", *chain.flags(), "--approver", chain.owner)
    assert code == 1 and "there is no node 999" in err
    code, _, err = rtc("cluster", "requests", "--home", tmp_path)
    assert code == 1 and "is neither a devnet folder" in err


def test_help_teaches_admission() -> None:
    code, approve, _ = rtc("cluster", "approve", "--help")
    assert code == 0
    assert "the cluster's owner" in approve and "more than" in approve and "2/3 of the current members" in approve
    assert "one node is admitted per cluster per" in approve and "rtc cluster approve 5 --home /tmp/rtc" in approve
    assert "--approver-key FILE" in approve and "--json" in approve
    code, join, _ = rtc("node", "join", "--help")
    assert code == 0 and "--cancel" in join and "rtc cluster approve NODE_ID" in join
    code, register, _ = rtc("node", "register", "--help")
    assert code == 0 and "ask to join" in register and "--no-join" in register
    code, requests, _ = rtc("cluster", "requests", "--help")
    assert code == 0 and "--cluster-id N" in requests
