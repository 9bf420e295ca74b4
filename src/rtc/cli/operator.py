"""`rtc node register|join|leave|withdraw|status`: a node operator's deposit and membership in the
Registry; `rtc cluster requests|approve|refuse`: the cluster's side of admission.

Every command resolves the same settings the same way (flags, then the node home, then
its devnet; see OPERATOR_HELP and APPROVER_HELP) and reports the contract's own reason
when it refuses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .output import add_json as _add_json
from .output import emit as _emit
from .output import progress as _progress

OPERATOR_HELP = """\
where the settings come from (the first that gives one wins):
  Ethereum endpoint  --eth-rpc URL; "eth_rpc" in NODE_HOME/rtc.json; the devnet
  Registry address   --registry ADDRESS; app_state.settings.ethereum.registry in
                     NODE_HOME/config/genesis.json; the devnet
  cluster to join    --cluster-id N; app_state.settings.ethereum.cluster_id in the genesis;
                     the devnet
  operator account   --operator-key FILE (a hex private key: transactions are signed here)
                     or --operator ADDRESS (an account unlocked at the endpoint); the
                     devnet's operator account for this node
"the devnet" is NODE_HOME/../devnet.json when `rtc devnet up` made NODE_HOME.
The node is found in the Registry by its CometBFT validator key
(NODE_HOME/config/priv_validator_key.json); a key belongs to one node forever.

a node's life: register (deposit, and ask to join the cluster) -> admitted (the cluster's
owner, or more than 2/3 of its members' operators, run `rtc cluster approve NODE_ID`; the
next Ethereum sync makes the node a validator) -> leave (membership ends, cooling-off
starts) -> withdraw (the deposit is paid back to the operator once the cooling-off is over)
exit status: 0 done, 1 error, 2 the contract refused (its reason is printed)

examples:
  rtc node register --home /tmp/rtc/node4 --deposit 10
  rtc node register --home ~/node --eth-rpc https://rpc.example --registry 0x5FbD... \\
      --cluster-id 3 --operator-key ~/.rtc/operator.key
  rtc node join --home ~/node              (ask again, after --no-join or a refusal)
  rtc node join --home ~/node --cancel     (withdraw the request)
  rtc node status --home /tmp/rtc/node0 -J
  rtc node leave --home /tmp/rtc/node0
  rtc node withdraw --home /tmp/rtc/node0
"""

APPROVER_HELP = """\
who may approve: the cluster's owner (its creator, unless ownership moved) admits a node
alone; otherwise each member's operator approves, and the approval that makes more than
2/3 of the current members admits it. At most one node is admitted per cluster per
Ethereum block (the validator set takes in one new member per Ethereum sync), so approve
a second node in a later block. Only the owner may refuse a request.

where the settings come from (the first that gives one wins):
  Ethereum endpoint  --eth-rpc URL; "eth_rpc" in NODE_HOME/rtc.json; the devnet
  Registry address   --registry ADDRESS; the node's genesis; the devnet
  cluster            --cluster-id N; the node's genesis; the devnet (approve and refuse
                     check that the request is for this cluster when one is known)
  approver account   --approver-key FILE (a hex private key: transactions are signed here)
                     or --approver ADDRESS (an account unlocked at the endpoint); with
                     --home DEVNET the devnet's cluster owner; with --home NODE_HOME of a
                     devnet, that node's operator (a member's approval)
--home is a devnet folder (made by `rtc devnet up`) or a member node's home.
exit status: 0 done, 1 error, 2 the contract refused (its reason is printed)

examples:
  rtc cluster requests --home /tmp/rtc
  rtc cluster approve 5 --home /tmp/rtc                  (as the devnet's cluster owner)
  rtc cluster approve 5 --home /tmp/rtc/node0 -J         (as node0's operator: one vote)
  rtc cluster approve 5 --home ~/node --approver-key ~/.rtc/operator.key
  rtc cluster refuse 5 --home /tmp/rtc
"""


class OperatorError(ValueError):
    """An operator command cannot go on; the message says which flag or file to fix (main prints it)."""


class _EthereumErrors:
    """Turns an unreachable endpoint or a refused JSON-RPC request into one line saying what to check."""

    def __init__(self, url: str, hint: str = "") -> None:
        self.url = url
        self.hint = hint

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any) -> bool:
        from requests.exceptions import ConnectionError as Unreachable
        from requests.exceptions import Timeout
        from web3.exceptions import TimeExhausted, Web3RPCError

        if isinstance(exc, Timeout):
            raise OperatorError(f"the Ethereum endpoint {self.url} did not answer in time") from None
        if isinstance(exc, Unreachable):
            raise OperatorError(f"cannot reach the Ethereum endpoint {self.url}: is it running, and is --eth-rpc right?") from None
        if isinstance(exc, TimeExhausted):
            raise OperatorError(f"the transaction was sent to {self.url} but not mined in time; "
                                "it may still be: check with `rtc node status`") from None
        if isinstance(exc, Web3RPCError):
            error = (exc.rpc_response or {}).get("error") if isinstance(exc.rpc_response, dict) else None
            message = error.get("message") if isinstance(error, dict) else str(exc)
            raise OperatorError(f"the Ethereum endpoint {self.url} refused the request: {message}"
                                + (f" ({self.hint})" if self.hint else "")) from None
        return False


class _OperatorContext:
    """Everything an operator command needs, resolved once from flags, node home and devnet."""

    def __init__(self, home: Path, url: str, registry: Any, validator_key: bytes, cluster_id: int | None,
                 operator: str | None, signs_here: bool) -> None:
        self.home = home
        self.url = url
        self.registry = registry
        self.validator_key = validator_key
        self.cluster_id = cluster_id
        self.operator = operator
        self.signs_here = signs_here

    def errors(self) -> _EthereumErrors:
        hint = "" if self.signs_here or self.operator is None else (
            f"is {self.operator} unlocked at {self.url}? --operator-key FILE signs here instead")
        return _EthereumErrors(self.url, hint)

    def node_id(self) -> int:
        """The node of this home's validator key, 0 if it was never registered."""
        return int(self.registry.contract.functions.node_of_key(self.validator_key).call())

    def registered_node_id(self) -> int:
        node_id = self.node_id()
        if not node_id:
            raise OperatorError(f"the validator key {self.validator_key.hex()[:16]}… of {self.home} is not registered "
                                f"in Registry {self.registry.address}; register it with `rtc node register --home {self.home}`")
        return node_id


def _first(*candidates: tuple[Any, str]) -> tuple[Any, str]:
    """The first value given, with where it came from (None, "" if none was)."""
    for value, source in candidates:
        if value is not None and value != "":
            return value, source
    return None, ""


def _genesis_ethereum(home: Path) -> Any:
    """The contract the node's genesis follows (`EthereumSettings`), or None (no genesis of ours, or
    a cluster with a fixed validator set)."""
    from rtc.cometbft import NodeHome
    from rtc.node.config import ClusterSettings

    try:
        settings = NodeHome(home).genesis().app_state.get("settings")
        return ClusterSettings.from_json(settings).ethereum if isinstance(settings, dict) else None
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return None


def _node_settings(home: Path) -> dict[str, Any]:
    """The node's rtc.json as plain JSON, so fields this version does not know are still readable."""
    from rtc.node.config import CONFIG_NAME

    path = home / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise OperatorError(f"{path} is not valid JSON: {exc}") from None
    return data if isinstance(data, dict) else {}


def _devnet_ethereum(home: Path) -> tuple[Any, int, str]:
    """The devnet's Ethereum side and this node's index in it, when `rtc devnet up` made this home."""
    from rtc.devnet import Devnet
    from rtc.devnet.manifest import MANIFEST

    manifest = home.parent / MANIFEST
    if not manifest.is_file():
        return None, -1, ""
    devnet = Devnet.load(home.parent)
    for index, node in enumerate(devnet.nodes):
        if Path(node.home).resolve() == home:
            return devnet.ethereum, index, f"the devnet {manifest}"
    return None, -1, ""


def _read_private_key(path: Path) -> bytes:
    """The operator's private key from a file holding it as hex; warns when other users may read it."""
    path = path.expanduser()
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise OperatorError(f"cannot read the operator key {path}: {exc.strerror}") from None
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise OperatorError(f"{path} does not hold a private key: expected 64 hex digits (optionally 0x-prefixed)")
    if path.stat().st_mode & 0o077:
        print(f"rtc: warning: other users may read the operator key {path}; run `chmod 600 {path}`", file=sys.stderr)
    return key


def _operator_context(args: argparse.Namespace, need_operator: bool, need_cluster: bool = False) -> _OperatorContext:
    """Resolve endpoint, Registry, cluster and operator (flags, then node home, then devnet) and check them."""
    from web3 import Web3

    from rtc.cometbft import NodeHome
    from rtc.ethereum.registry import Registry

    home = args.home.expanduser().resolve()
    node_home = NodeHome(home)
    if not node_home.validator_key_file.is_file():
        raise OperatorError(f"{home} is not a node home: {node_home.validator_key_file} is missing "
                            "(node homes are made by `rtc devnet up` or `cometbft init --home DIR`)")
    genesis = _genesis_ethereum(home)
    devnet, index, manifest = _devnet_ethereum(home)
    url, url_from = _first((args.eth_rpc, "--eth-rpc"), (_node_settings(home).get("eth_rpc"), str(home / "rtc.json")),
                           (devnet.url if devnet else None, manifest))
    if url is None:
        raise OperatorError(f"no Ethereum endpoint for {home}: pass --eth-rpc URL "
                            f"(or set \"eth_rpc\" in {home / 'rtc.json'})")
    address, address_from = _first((args.registry, "--registry"),
                                   (genesis.registry if genesis else None, "the node's genesis"),
                                   (devnet.registry if devnet else None, manifest))
    if address is None:
        raise OperatorError(f"no Registry address for {home}: pass --registry ADDRESS "
                            "(the node's genesis has no app_state.settings.ethereum.registry)")
    if not Web3.is_address(address):
        raise OperatorError(f"{address!r} (from {address_from}) is not an Ethereum address")
    cluster_id, _ = _first((getattr(args, "cluster_id", None), "--cluster-id"),
                           (genesis.cluster_id if genesis else None, "the node's genesis"),
                           (devnet.cluster_id if devnet else None, manifest))
    if need_cluster and cluster_id is None:
        raise OperatorError(f"no cluster to join for {home}: pass --cluster-id N (or --no-join to only register)")

    private_key: bytes | None = None
    operator: str | None = None
    operator_from = ""
    if getattr(args, "operator_key", None) is not None:
        private_key = _read_private_key(args.operator_key)
        operator_from = f"key in {args.operator_key}, signed here"
    elif getattr(args, "operator", None):
        if not Web3.is_address(args.operator):
            raise OperatorError(f"--operator {args.operator!r} is not an Ethereum address")
        operator, operator_from = Web3.to_checksum_address(args.operator), "--operator, unlocked at the endpoint"
    elif devnet is not None and index < len(devnet.operators):
        operator, operator_from = devnet.operators[index], f"{manifest}, unlocked at its anvil"
    if need_operator and private_key is None and operator is None:
        raise OperatorError(f"no operator account for {home}: pass --operator-key FILE (a hex private key; "
                            "transactions are signed here) or --operator ADDRESS (an account unlocked at the endpoint)")

    registry = Registry.connect(url, address, private_key)
    operator = registry.signer or operator
    context = _OperatorContext(home, url, registry, node_home.validator_key(), None if cluster_id is None else int(cluster_id),
                               operator, private_key is not None)
    with context.errors():
        if not registry.w3.eth.get_code(registry.address):
            raise OperatorError(f"there is no contract at {address} (from {address_from}) on {url}; check --registry")
        chain_id = genesis.chain_id if genesis else None
        if chain_id is not None and registry.w3.eth.chain_id != chain_id:
            raise OperatorError(f"{url} is Ethereum chain {registry.w3.eth.chain_id}, but the node's genesis follows "
                                f"chain {chain_id}; check --eth-rpc")
    _progress(f"Ethereum {url} ({url_from}), Registry {registry.address} ({address_from})")
    if need_operator:
        _progress(f"operator {operator} ({operator_from})")
    return context


def _ether(text: str) -> int:
    """An amount of ether as wei, exactly (2.5 is 2500000000000000000, no float rounding)."""
    from decimal import Decimal, InvalidOperation, localcontext

    with localcontext() as decimal_context:
        decimal_context.prec = 100
        try:
            wei = Decimal(text) * 10**18
        except InvalidOperation:
            wei = Decimal("NaN")
        if not wei.is_finite() or wei <= 0 or wei != wei.to_integral_value():
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive amount of ether (at most 18 decimals)")
        return int(wei)


def _ether_text(wei: int) -> str:
    from decimal import Decimal, localcontext

    with localcontext() as decimal_context:
        decimal_context.prec = 100
        return f"{(Decimal(wei) / 10**18).normalize():f} ETH"


def _refused(args: argparse.Namespace, context: Any, exc: Exception, what: str = "refused") -> int:
    """The contract's own reason and the current block, so "withdrawable at block N" can be compared."""
    block = context.registry.w3.eth.block_number
    home = str(context.home) if context.home is not None else None
    data = {"refused": str(exc), "ethereum_block": block, "registry": context.registry.address, "home": home}
    _emit(args, data, f"{what}: {exc} (Ethereum is at block {block})")
    return 2


def _node_report(context: _OperatorContext, node_id: int) -> tuple[dict[str, Any], str]:
    """The node's contract state as JSON and as text, with what the cooling-off means right now."""
    registry = context.registry
    block = registry.w3.eth.block_number
    state = registry.node(node_id)
    member = bool(state.cluster_id) and state.member_until == 0 and state.status == "active"
    cooling = state.status in ("leaving", "ejected")
    left = max(0, state.withdrawable_block - block) if cooling else None
    request = registry.join_request(node_id)
    data = {**state.to_json(), "home": str(context.home), "registry": registry.address, "ethereum_block": block,
            "member": member, "cooling_off": bool(left), "blocks_until_withdrawable": left,
            "join_request": request.to_json() if request else None}
    if request is not None:
        cluster = (f"none yet: asked to join cluster {request.cluster_id} at block {request.requested_block}, "
                   f"{_approvals_text(request)}")
    elif not state.cluster_id:
        cluster = "none (not joined)"
    elif not state.member_until:
        cluster = f"{state.cluster_id}, member since block {state.member_since}"
    else:
        cluster = f"{state.cluster_id}, was a member from block {state.member_since} until block {state.member_until}"
    if not cooling:
        cooling_text = "-"
    elif left:
        cooling_text = f"until block {state.withdrawable_block} ({left} block{'s' if left > 1 else ''} to go)"
    else:
        cooling_text = f"over since block {state.withdrawable_block}: `rtc node withdraw --home {context.home}`"
    text = "\n".join([
        f"node {node_id} in Registry {registry.address} at Ethereum block {block}",
        f"  validator key  {state.validator_key.hex()}",
        f"  operator       {state.operator}",
        f"  deposit        {_ether_text(state.deposit_wei)}",
        f"  status         {state.status}",
        f"  cluster        {cluster}",
        f"  cooling-off    {cooling_text}",
    ])
    return data, text


def _approvals_text(request: Any) -> str:
    return (f"{len(request.approvals)} of the {request.needed} members' approvals needed so far "
            "(or the cluster owner's)")


def _ask_to_join(args: argparse.Namespace, context: _OperatorContext, node_id: int, cluster_id: int) -> int | None:
    """Send the request; the exit status when the contract refuses it, else None."""
    from rtc.ethereum.types import ContractRefused

    _progress(f"node {node_id}: asking to join cluster {cluster_id}")
    try:
        context.registry.request_join(context.operator, node_id, cluster_id)
    except ContractRefused as exc:
        return _refused(args, context, exc, f"node {node_id} is registered, but its request to join cluster "
                                            f"{cluster_id} was refused")
    return None


def _next_step(node_id: int, cluster_id: int) -> str:
    return (f"it becomes a member once the cluster's owner, or more than 2/3 of its members' operators, approve:\n"
            f"  rtc cluster approve {node_id} --home DEVNET_OR_MEMBER_HOME   (see rtc cluster approve --help)\n"
            f"then the next Ethereum sync makes it a validator of cluster {cluster_id}")


def _check_cluster(context: _OperatorContext, cluster_id: int, nothing: str = "nothing was registered") -> None:
    """Refuse a cluster that does not exist or is full before any deposit moves."""
    functions = context.registry.contract.functions
    count = int(functions.cluster_count().call())
    if not 1 <= cluster_id <= count:
        raise OperatorError(f"there is no cluster {cluster_id} in Registry {context.registry.address} "
                            f"(it has {count}); check --cluster-id; {nothing}")
    max_members = int(functions.cluster(cluster_id).call()[3])
    members = len(functions.members(cluster_id).call())
    if members >= max_members:
        raise OperatorError(f"cluster {cluster_id} is full ({members} of {max_members} members); {nothing}")


def cmd_node_register(args: argparse.Namespace) -> int:
    from rtc.ethereum.types import ContractRefused

    context = _operator_context(args, need_operator=True, need_cluster=not args.no_join)
    registry, operator, cluster_id = context.registry, context.operator, context.cluster_id
    with context.errors():
        if not args.no_join:
            _check_cluster(context, cluster_id)
        _progress(f"registering validator key {context.validator_key.hex()[:16]}… with a deposit of "
                  f"{_ether_text(args.deposit)}")
        try:
            node_id = registry.register(operator, context.validator_key, args.deposit)
        except ContractRefused as exc:
            return _refused(args, context, exc)
        _progress(f"registered as node {node_id}")
        if not args.no_join:
            refused = _ask_to_join(args, context, node_id, cluster_id)
            if refused is not None:
                return refused
        data, text = _node_report(context, node_id)
    if args.no_join:
        _emit(args, data, f"registered node {node_id}\n{text}\nask to join a cluster with "
                          f"`rtc node join --home {context.home} --cluster-id N`")
    else:
        _emit(args, data, f"registered node {node_id} and asked to join cluster {cluster_id}\n{text}\n"
                          f"{_next_step(node_id, cluster_id)}")
    return 0


def cmd_node_join(args: argparse.Namespace) -> int:
    """Ask to join the cluster (or, with --cancel, withdraw the request)."""
    from rtc.ethereum.types import ContractRefused

    context = _operator_context(args, need_operator=True, need_cluster=not args.cancel)
    with context.errors():
        node_id = context.registered_node_id()
        if args.cancel:
            _progress(f"node {node_id}: withdrawing its request to join")
            try:
                context.registry.cancel_join(context.operator, node_id)
            except ContractRefused as exc:
                return _refused(args, context, exc)
            data, text = _node_report(context, node_id)
            _emit(args, data, f"node {node_id} no longer asks to join a cluster\n{text}")
            return 0
        _check_cluster(context, context.cluster_id, f"node {node_id} did not ask to join")
        refused = _ask_to_join(args, context, node_id, context.cluster_id)
        if refused is not None:
            return refused
        data, text = _node_report(context, node_id)
    _emit(args, data, f"node {node_id} asked to join cluster {context.cluster_id}\n{text}\n"
                      f"{_next_step(node_id, context.cluster_id)}")
    return 0


def cmd_node_leave(args: argparse.Namespace) -> int:
    from rtc.ethereum.types import ContractRefused

    context = _operator_context(args, need_operator=True)
    with context.errors():
        node_id = context.registered_node_id()
        _progress(f"node {node_id}: requesting to leave")
        try:
            withdrawable = context.registry.request_leave(context.operator, node_id)
        except ContractRefused as exc:
            return _refused(args, context, exc)
        data, _ = _node_report(context, node_id)
    left = f"; its membership of cluster {data['cluster_id']} has ended" if data["cluster_id"] else ""
    _emit(args, data, f"node {node_id} is leaving{left}\n"
                      f"withdrawable from Ethereum block {withdrawable} (Ethereum is at block {data['ethereum_block']})\n"
                      f"then run: rtc node withdraw --home {context.home}")
    return 0


def cmd_node_withdraw(args: argparse.Namespace) -> int:
    from rtc.ethereum.types import ContractRefused

    context = _operator_context(args, need_operator=True)
    with context.errors():
        node_id = context.registered_node_id()
        before = context.registry.node(node_id)
        _progress(f"node {node_id}: withdrawing its deposit of {_ether_text(before.deposit_wei)}")
        try:
            context.registry.withdraw(context.operator, node_id)
        except ContractRefused as exc:
            return _refused(args, context, exc)
        data, _ = _node_report(context, node_id)
    data["paid_wei"] = before.deposit_wei
    _emit(args, data, f"paid {_ether_text(before.deposit_wei)} to operator {before.operator}; node {node_id} is "
                      "withdrawn (final: its validator key can never register again)")
    return 0


def cmd_node_status(args: argparse.Namespace) -> int:
    context = _operator_context(args, need_operator=False)
    with context.errors():
        node_id = context.node_id()
        if not node_id:
            block = context.registry.w3.eth.block_number
            data = {"node_id": 0, "status": "none", "validator_key": context.validator_key.hex(), "home": str(context.home),
                    "registry": context.registry.address, "ethereum_block": block}
            _emit(args, data, f"the validator key {context.validator_key.hex()} is not registered in Registry "
                              f"{context.registry.address} (Ethereum block {block}); "
                              f"register it with `rtc node register --home {context.home}`")
            return 0
        data, text = _node_report(context, node_id)
    _emit(args, data, text)
    return 0


def add_operator_parsers(node_actions: Any) -> None:
    """`rtc node register|leave|withdraw|status`: the same settings, resolved the same way."""
    import textwrap

    commands = (
        ("register", cmd_node_register, "register the node's validator key with a deposit and ask to join the cluster",
         "Register this node's CometBFT validator key in the Registry with a deposit paid by the operator account, "
         "then ask to join the cluster. The cluster admits it when its owner, or more than 2/3 of its members' "
         "operators, approve (`rtc cluster approve NODE_ID`); the next Ethereum sync makes it a validator. Only "
         "the operator can later leave and withdraw the deposit."),
        ("join", cmd_node_join, "ask to join the cluster (or withdraw the request with --cancel)",
         "Ask the cluster to admit this registered node (after `register --no-join`, or after a request was "
         "refused or withdrawn). Nothing changes until the cluster's owner, or more than 2/3 of its members' "
         "operators, approve; a node joins one cluster in its life."),
        ("leave", cmd_node_leave, "end the node's membership and start the cooling-off",
         "Request to leave: the node's membership ends at once and the cooling-off starts; the deposit stays "
         "slashable until then and can be withdrawn from the block printed."),
        ("withdraw", cmd_node_withdraw, "pay the deposit back to the operator after the cooling-off",
         "Pay the whole remaining deposit back to the operator account. Before the cooling-off is over the "
         "contract refuses, and the block from which it is allowed is printed with the current block."),
        ("status", cmd_node_status, "the node's id, deposit, status, cluster and cooling-off in the Registry",
         "Show the node's state in the Registry: node id, operator, deposit, status, cluster membership and "
         "cooling-off. Needs no operator account."),
    )
    for name, func, help_text, description in commands:
        sub = node_actions.add_parser(name, help=help_text, description=textwrap.fill(description, 88),
                                      epilog=OPERATOR_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--home", type=Path, required=True, metavar="NODE_HOME",
                         help="the node's CometBFT home (its validator key is config/priv_validator_key.json)")
        ethereum = sub.add_argument_group("Ethereum (default: the node's rtc.json and genesis, or its devnet)")
        ethereum.add_argument("--eth-rpc", metavar="URL", help="Ethereum JSON-RPC endpoint, e.g. http://127.0.0.1:8545")
        ethereum.add_argument("--registry", metavar="ADDRESS", help="address of the Registry contract")
        if name in ("register", "join"):
            ethereum.add_argument("--cluster-id", type=int, metavar="N", help="the cluster to join")
        if name == "join":
            sub.add_argument("--cancel", action="store_true", help="withdraw the node's pending request instead")
        if name == "register":
            sub.add_argument("--deposit", type=_ether, default=_ether("10"), metavar="ETH",
                             help="deposit in ether, at least the contract's minimum (default 10)")
            sub.add_argument("--no-join", action="store_true", help="only register; do not ask to join a cluster")
        if name != "status":
            who = sub.add_argument_group("operator account (default: the devnet's account for this node)")
            one = who.add_mutually_exclusive_group()
            one.add_argument("--operator-key", type=Path, metavar="FILE",
                             help="file holding the operator's private key as hex: transactions are signed here "
                                  "and the endpoint never sees the key")
            one.add_argument("--operator", metavar="ADDRESS",
                             help="an account unlocked at the endpoint (as anvil's dev accounts are); it signs")
        _add_json(sub)
        sub.set_defaults(func=func)


# -- the cluster's side: requests, approve, refuse ------------------------------------------


class _ClusterContext:
    """The Registry, the cluster and the approving account, resolved from flags, a devnet or a node home."""

    def __init__(self, home: Path | None, url: str, registry: Any, cluster_id: int | None, approver: str | None,
                 signs_here: bool, names: dict[bytes, str]) -> None:
        self.home = home
        self.url = url
        self.registry = registry
        self.cluster_id = cluster_id
        self.approver = approver
        self.signs_here = signs_here
        self.names = names  # a devnet's node names by validator key

    def errors(self) -> _EthereumErrors:
        hint = "" if self.signs_here or self.approver is None else (
            f"is {self.approver} unlocked at {self.url}? --approver-key FILE signs here instead")
        return _EthereumErrors(self.url, hint)


def _cluster_context(args: argparse.Namespace, need_approver: bool, need_cluster: bool) -> _ClusterContext:
    """Resolve endpoint, Registry, cluster and approver (flags, then the devnet or node home) and check them."""
    from web3 import Web3

    from rtc.cometbft import NodeHome
    from rtc.devnet import Devnet
    from rtc.devnet.manifest import MANIFEST
    from rtc.ethereum.registry import Registry

    home = args.home.expanduser().resolve() if args.home is not None else None
    devnet: Any = None
    genesis: Any = None
    node_url: str | None = None
    source = ""
    default_approver: tuple[str | None, str] = (None, "")
    names: dict[bytes, str] = {}
    if home is not None:
        if (home / MANIFEST).is_file():
            loaded = Devnet.load(home)
            devnet, source, names = loaded.ethereum, f"the devnet {home / MANIFEST}", loaded.validator_names()
            if devnet is None:
                raise OperatorError(f"the devnet in {home} has no Ethereum side, so it has no cluster to admit to")
            from rtc.devnet.ethereum import cluster_owner

            default_approver = (cluster_owner(devnet), f"{source}: the cluster's owner, unlocked at its anvil")
        elif NodeHome(home).validator_key_file.is_file():
            genesis, node_url = _genesis_ethereum(home), _node_settings(home).get("eth_rpc")
            devnet, index, source = _devnet_ethereum(home)
            if devnet is not None and 0 <= index < len(devnet.operators):
                default_approver = (devnet.operators[index], f"{source}: this node's operator, unlocked at its anvil")
        else:
            raise OperatorError(f"{home} is neither a devnet folder ({MANIFEST}) nor a node home "
                                "(config/priv_validator_key.json)")
    url, url_from = _first((args.eth_rpc, "--eth-rpc"), (node_url, "the node's rtc.json"),
                           (devnet.url if devnet else None, source))
    if url is None:
        raise OperatorError("no Ethereum endpoint: pass --eth-rpc URL (or --home with a devnet or a node home)")
    address, address_from = _first((args.registry, "--registry"), (genesis.registry if genesis else None, "the node's genesis"),
                                   (devnet.registry if devnet else None, source))
    if address is None:
        raise OperatorError("no Registry address: pass --registry ADDRESS (or --home with a devnet or a node home)")
    if not Web3.is_address(address):
        raise OperatorError(f"{address!r} (from {address_from}) is not an Ethereum address")
    cluster_id, _ = _first((args.cluster_id, "--cluster-id"), (genesis.cluster_id if genesis else None, "the node's genesis"),
                           (devnet.cluster_id if devnet else None, source))
    if need_cluster and cluster_id is None:
        raise OperatorError("which cluster? pass --cluster-id N (or --home with a devnet or a node home)")

    private_key: bytes | None = None
    approver: str | None = None
    approver_from = ""
    if getattr(args, "approver_key", None) is not None:
        private_key = _read_private_key(args.approver_key)
        approver_from = f"key in {args.approver_key}, signed here"
    elif getattr(args, "approver", None):
        if not Web3.is_address(args.approver):
            raise OperatorError(f"--approver {args.approver!r} is not an Ethereum address")
        approver, approver_from = Web3.to_checksum_address(args.approver), "--approver, unlocked at the endpoint"
    else:
        approver, approver_from = default_approver
    if need_approver and private_key is None and approver is None:
        raise OperatorError("no approving account: pass --approver-key FILE (a hex private key; transactions are "
                            "signed here) or --approver ADDRESS (an account unlocked at the endpoint)")
    registry = Registry.connect(url, address, private_key)
    context = _ClusterContext(home, url, registry, None if cluster_id is None else int(cluster_id),
                              registry.signer or approver, private_key is not None, names)
    with context.errors():
        if not registry.w3.eth.get_code(registry.address):
            raise OperatorError(f"there is no contract at {address} (from {address_from}) on {url}; check --registry")
    _progress(f"Ethereum {url} ({url_from}), Registry {registry.address} ({address_from})")
    if need_approver:
        _progress(f"approver {context.approver} ({approver_from})")
    return context


def _pending(context: _ClusterContext, node_id: int) -> Any:
    """The node's pending request, checked to be for the cluster the context names."""
    request = context.registry.join_request(node_id)
    if request is None:
        state = context.registry.node(node_id)
        if state.status == "none":
            raise OperatorError(f"there is no node {node_id} in Registry {context.registry.address}")
        why = (f"it is a member of cluster {state.cluster_id}" if state.cluster_id and not state.member_until
               else f"it is {state.status}" if state.status != "active"
               else "its operator asks with `rtc node join --home NODE_HOME`")
        raise OperatorError(f"node {node_id} has no pending request to join a cluster ({why})")
    if context.cluster_id is not None and request.cluster_id != context.cluster_id:
        raise OperatorError(f"node {node_id} asks to join cluster {request.cluster_id}, not cluster "
                            f"{context.cluster_id}; pass --cluster-id {request.cluster_id} if that is the one you mean")
    return request


def _request_row(context: _ClusterContext, request: Any) -> tuple[dict[str, Any], str]:
    state = context.registry.node(request.node_id)
    name = context.names.get(state.validator_key)
    data = {**request.to_json(), "operator": state.operator, "validator_key": state.validator_key.hex(),
            "deposit_wei": state.deposit_wei, "name": name}
    text = (f"node {request.node_id}{f' ({name})' if name else ''}: asked at block {request.requested_block}, "
            f"{len(request.approvals)} of {request.needed} members' approvals"
            + (f" (from nodes {', '.join(map(str, request.approvals))})" if request.approvals else "")
            + f"; operator {state.operator}, key {state.validator_key.hex()[:16]}…, deposit {_ether_text(state.deposit_wei)}")
    return data, text


def cmd_cluster_requests(args: argparse.Namespace) -> int:
    context = _cluster_context(args, need_approver=False, need_cluster=True)
    registry, cluster_id = context.registry, context.cluster_id
    assert cluster_id is not None
    with context.errors():
        block = registry.w3.eth.block_number
        if not 1 <= cluster_id <= int(registry.contract.functions.cluster_count().call(block_identifier=block)):
            raise OperatorError(f"there is no cluster {cluster_id} in Registry {registry.address}; check --cluster-id")
        owner = registry.cluster_owner(cluster_id, block)
        needed = int(registry.contract.functions.approvals_needed(cluster_id).call(block_identifier=block))
        rows = [_request_row(context, request) for request in registry.pending_requests(cluster_id, block)]
    data = {"registry": registry.address, "cluster_id": cluster_id, "ethereum_block": block, "owner": owner,
            "needed": needed, "requests": [row for row, _ in rows]}
    admits = f"owner {owner} admits alone" if owner else "no owner: only the members admit"
    lines = [f"cluster {cluster_id} in Registry {registry.address} at Ethereum block {block}: {len(rows)} pending "
             f"join request{'s' if len(rows) != 1 else ''} ({admits}; {needed} members' approvals admit)"]
    lines += [f"  {text}" for _, text in rows]
    if rows:
        lines.append("approve one with: rtc cluster approve NODE_ID (see --help)")
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_cluster_approve(args: argparse.Namespace) -> int:
    from rtc.ethereum.types import ContractRefused

    context = _cluster_context(args, need_approver=True, need_cluster=False)
    registry, approver, node_id = context.registry, context.approver, args.node_id
    assert approver is not None
    with context.errors():
        request = _pending(context, node_id)
        owner = registry.cluster_owner(request.cluster_id)
        voter = int(registry.contract.functions.node_of_operator(approver).call())
        by_owner = owner is not None and owner.lower() == approver.lower()
        role = "the cluster's owner" if by_owner else f"the operator of node {voter}" if voter else approver
        _progress(f"approving node {node_id}'s request to join cluster {request.cluster_id} as {role}")
        try:
            joined = registry.approve_join(approver, node_id)
        except ContractRefused as exc:
            return _refused(args, context, exc)
        after = registry.join_request(node_id)
        block = registry.w3.eth.block_number
    data = {"node_id": node_id, "cluster_id": request.cluster_id, "approver": approver, "by_owner": by_owner,
            "joined": joined, "join_request": after.to_json() if after else None, "registry": registry.address,
            "ethereum_block": block}
    if joined:
        text = (f"node {node_id} is a member of cluster {request.cluster_id} (Ethereum block {block}); the next "
                "Ethereum sync makes it a validator")
    else:
        assert after is not None
        text = (f"approval recorded: node {node_id} has {_approvals_text(after)} to join cluster "
                f"{request.cluster_id}")
    _emit(args, data, text)
    return 0


def cmd_cluster_refuse(args: argparse.Namespace) -> int:
    from rtc.ethereum.types import ContractRefused

    context = _cluster_context(args, need_approver=True, need_cluster=False)
    registry, node_id = context.registry, args.node_id
    assert context.approver is not None
    with context.errors():
        request = _pending(context, node_id)
        _progress(f"refusing node {node_id}'s request to join cluster {request.cluster_id}")
        try:
            registry.cancel_join(context.approver, node_id)
        except ContractRefused as exc:
            return _refused(args, context, exc)
        block = registry.w3.eth.block_number
    data = {"node_id": node_id, "cluster_id": request.cluster_id, "refused_by": context.approver,
            "registry": registry.address, "ethereum_block": block}
    _emit(args, data, f"node {node_id}'s request to join cluster {request.cluster_id} is refused "
                      f"(its operator may ask again with `rtc node join`)")
    return 0


def add_cluster_parsers(cluster_actions: Any) -> None:
    """`rtc cluster requests|approve|refuse`: admission, as the cluster's owner or a member's operator."""
    import textwrap

    commands = (
        ("requests", cmd_cluster_requests, "join requests waiting for the cluster's approval",
         "List the nodes that asked to join the cluster and are waiting: their approvals so far, how many "
         "members' approvals admit a node, and who owns the cluster. Needs no approving account."),
        ("approve", cmd_cluster_approve, "approve a node's request to join (owner: admits; member: one vote)",
         "Approve a node's pending request to join. The cluster's owner admits it at once; a member's operator "
         "adds one approval, and the approval that makes more than 2/3 of the current members admits it. The "
         "next Ethereum sync then makes the node a validator."),
        ("refuse", cmd_cluster_refuse, "refuse a node's request to join (the cluster's owner only)",
         "Refuse a node's pending request to join, dropping the approvals it had. Only the cluster's owner may; "
         "the node's operator may ask again."),
    )
    for name, func, help_text, description in commands:
        sub = cluster_actions.add_parser(name, help=help_text, description=textwrap.fill(description, 88),
                                         epilog=APPROVER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        if name != "requests":
            sub.add_argument("node_id", type=int, metavar="NODE_ID", help="the node that asked to join (its id in "
                             "the Registry, as `rtc cluster requests` lists it)")
        sub.add_argument("--home", type=Path, metavar="DIR",
                         help="a devnet's folder, or a member node's home (default settings come from it)")
        ethereum = sub.add_argument_group("Ethereum (default: the devnet, or the node's rtc.json and genesis)")
        ethereum.add_argument("--eth-rpc", metavar="URL", help="Ethereum JSON-RPC endpoint, e.g. http://127.0.0.1:8545")
        ethereum.add_argument("--registry", metavar="ADDRESS", help="address of the Registry contract")
        ethereum.add_argument("--cluster-id", type=int, metavar="N", help="the cluster")
        if name != "requests":
            who = sub.add_argument_group("approving account (default: see below)")
            one = who.add_mutually_exclusive_group()
            one.add_argument("--approver-key", type=Path, metavar="FILE",
                             help="file holding the approver's private key as hex: transactions are signed here")
            one.add_argument("--approver", metavar="ADDRESS",
                             help="an account unlocked at the endpoint (as anvil's dev accounts are); it signs")
        _add_json(sub)
        sub.set_defaults(func=func)
