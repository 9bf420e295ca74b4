"""A local cluster on loopback: N CometBFT processes, N state machines, one folder.

Everything the devnet starts is recorded in `<home>/devnet.json`, so `rtc devnet down`
(or a test's teardown) can stop exactly those processes and nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rtc.cometbft import RPC, NodeHome, RPCError
from rtc.membership import VALIDATOR_POWER
from rtc.tools import cometbft_binary

from . import cometbft
from .manifest import (
    ANVIL_PORT_OFFSET, MANIFEST, MAX_NODES, MAX_VALIDATORS, DevnetError, EthereumInfo, NodeInfo, SwarmInfo,
    ValidatorInfo, state_file,
)

if TYPE_CHECKING:
    from rtc.ethereum import Anvil
    from rtc.node.config import ClusterSettings, RestoredFrom

    from .restore import Restoration

# Creating a devnet needs the VM, the node's settings and web3 (for anvil and the Registry);
# they are imported where they are used, so that commands that only read the manifest
# (`rtc call --home`, `rtc devnet status`) start fast.

DEFAULT_BASE_PORT = 26600
PORTS_PER_NODE = 10


@dataclass
class NodeStatus:
    name: str
    rpc: str
    height: int | None
    app_hash: str | None
    running: bool
    error: str | None = None
    catching_up: bool = False  # CometBFT still block-syncs: clients take it as unusable until it stops


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(pid: int, home: str) -> bool:
    """Whether `pid` runs and is ours (one of its arguments is exactly our node home), not a reused pid."""
    if pid <= 0:
        return False
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return home.encode() in arguments and status[0] != "Z"


class Devnet:
    def __init__(self, home: Path, chain_id: str, nodes: list[NodeInfo], code_hash: str,
                 ethereum: EthereumInfo | None = None, swarm: SwarmInfo | None = None,
                 validators: list[ValidatorInfo] | None = None) -> None:
        self.home = home
        self.validators = validators or []  # batch validators outside the cluster
        self.swarm = swarm if swarm is not None else SwarmInfo(str(home / "swarm"))
        self.chain_id = chain_id
        self.nodes = nodes
        self.code_hash = code_hash
        self.ethereum = ethereum
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._anvil: Anvil | None = None

    # -- creation --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        home: Path,
        nodes: int,
        app: Path,
        base_port: int = DEFAULT_BASE_PORT,
        chain_id: str | None = None,
        progress: Callable[[str], None] = lambda _: None,
        settings: ClusterSettings | None = None,
        eth_rpc: str | None = None,
        swarm: str | None = None,
        swarm_batch: str | None = None,
        snapshot_every: int = 0,
        validators: int = 0,
        cartel_app: Path | None = None,
        node_apps: dict[str, Path] | None = None,
        restoration: Restoration | None = None,
        core: str = "",
    ) -> "Devnet":
        """Make the node homes, the Ethereum side (anvil, or the chain at `eth_rpc`) and one genesis;
        `validators` batch validators outside the cluster re-check its checkpoints.

        Fault injection: `cartel_app` makes every node run that component while the Registry and
        the genesis name `app`'s code (a cartel lying about its code); `node_apps` ({"node2":
        path}) makes single nodes run other code (it wins over `cartel_app` for that node).

        `core`: what executes calls on every node, "python" or "native", or "mixed" (even nodes
        native, odd ones Python: two implementations that must agree); "": each node's default.

        `restoration`: the nodes are a convicted cluster's new members, in a new cluster of the
        same contracts, starting from its last valid checkpoint (`restore.restore_cluster`)."""
        from rtc.node.config import ClusterSettings, GenesisAppState
        from rtc.vm import Backend

        from .ethereum import cluster_settings, set_validator_rules

        # One chain id per devnet (signatures are bound to it): a call signed for one never holds on another.
        chain_id = chain_id or f"rtc-devnet-{os.urandom(4).hex()}"
        home = home.resolve()
        if not 1 <= nodes <= MAX_NODES:
            raise DevnetError(f"a devnet has 1 to {MAX_NODES} nodes")
        if not 0 <= validators <= MAX_VALIDATORS:
            raise DevnetError(f"a devnet has 0 to {MAX_VALIDATORS} batch validators")
        if restoration is not None and validators:
            raise DevnetError("a restored cluster runs without batch validators for now: their replicas cannot yet "
                              "start from another cluster's checkpoint")
        if (home / MANIFEST).exists():
            raise DevnetError(f"{home} already holds a devnet; run `rtc devnet down --home {home}` and remove it, or pick another --home")
        if not app.is_file():
            raise DevnetError(f"backend component {app} not found (build the examples with `make setup`)")
        progress(f"checking backend {app.name}")
        settings = settings or ClusterSettings()
        backend = Backend.from_file(app, settings.limits)  # refuses a bad component before anything is created
        faults = _fault_apps(nodes, cartel_app, node_apps or {}, settings, progress)
        cores = _node_cores(nodes, core)
        wanted = [p for i in range(nodes) for p in _node_ports(base_port, i)]
        if eth_rpc is None:
            wanted.append(base_port + ANVIL_PORT_OFFSET)
        busy = [p for p in wanted if not _port_free(p)]
        if busy:
            raise DevnetError(f"ports {busy} are in use; stop what uses them or pass another --base-port")
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(app, home / "app.wasm")
        (home / "logs").mkdir(exist_ok=True)
        infos: list[NodeInfo] = []
        for i in range(nodes):
            name = f"node{i}"
            progress(f"generating keys and config for {name}")
            node_home = cometbft.init_home(home / name, name)
            p2p, rpc, abci = _node_ports(base_port, i)
            infos.append(NodeInfo(name, str(node_home.path), p2p, rpc, abci, cometbft.node_id(node_home), core=cores[i]))
            if name in faults:
                shutil.copyfile(faults[name], home / f"{name}-fault.wasm")
                infos[-1].fault_app = faults[name].name
        devnet = cls(home, chain_id, infos, backend.code_hash.hex(),
                     swarm=SwarmInfo(swarm or str(home / "swarm"), swarm_batch, snapshot_every or SwarmInfo.snapshot_every))
        devnet.save()
        progress("uploading the backend to Swarm")
        code_reference = devnet._upload(app.read_bytes())
        if restoration is not None:
            devnet.ethereum = devnet._successor(restoration, backend.code_hash, code_reference, progress)
        else:
            devnet.ethereum = devnet._create_ethereum(eth_rpc, base_port, backend.code_hash, code_reference, progress)
        devnet.save()
        settings = replace(settings, ethereum=cluster_settings(devnet.ethereum))
        homes = [NodeHome(Path(n.home)) for n in infos]
        members = [h.validator(VALIDATOR_POWER, n.name) for h, n in zip(homes, infos)]
        restored = restoration.restored_from if restoration is not None else None
        cometbft.write_genesis(homes, chain_id, members,
                               GenesisAppState(backend.code_hash, settings, restored).to_json(),
                               vote_extensions=settings.ethereum is not None and settings.ethereum.validation is not None,
                               initial_height=restored.height + 1 if restored is not None else 1)
        if validators:
            from .validators import register_validators

            progress("uploading the genesis to Swarm, for batch validators to replay from")
            set_validator_rules(devnet.ethereum, devnet._upload(homes[0].genesis_file.read_bytes()))
            progress(f"registering {validators} batch validators with deposits and attesters")
            devnet.validators = register_validators(devnet.home, devnet.ethereum, devnet.swarm, validators)
        devnet.save()
        for info in infos:
            devnet._configure(info, [o for o in infos if o is not info])
            if restoration is not None and restoration.state is not None:
                from rtc.node.config import NodeConfig

                shutil.copytree(restoration.state, Path(info.home) / NodeConfig.load(Path(info.home)).state_dir)
        return devnet

    def _successor(self, restoration: Restoration, code_hash: bytes, code_reference: bytes,
                   progress: Callable[[str], None]) -> EthereumInfo:
        from rtc.node.attesting import ATTESTER_KEY_NAME

        from .ethereum import register_successor

        homes = [NodeHome(Path(n.home)) for n in self.nodes]
        progress(f"creating the successor of cluster {restoration.restored_from.cluster_id} in Registry "
                 f"{restoration.ethereum.registry}; registering the new members with deposits and admitting them")
        return register_successor(restoration.ethereum, code_hash, code_reference,
                                  [home.validator_key() for home in homes],
                                  [home.secret_key(ATTESTER_KEY_NAME) for home in homes])

    def _upload(self, data: bytes) -> bytes:
        """Put `data` into the devnet's Swarm (the embedded store, or Bee); its reference."""
        from rtc.history.config import open_swarm

        swarm = open_swarm(self.swarm.store, self.swarm.batch)
        try:
            reference = swarm.upload(data)
            swarm.flush()
        finally:
            swarm.close()
        return reference

    def _create_ethereum(self, eth_rpc: str | None, base_port: int, code_hash: bytes, code_reference: bytes,
                         progress: Callable[[str], None]) -> EthereumInfo:
        from .ethereum import register_cluster, start_anvil

        from rtc.node.attesting import ATTESTER_KEY_NAME

        homes = [NodeHome(Path(n.home)) for n in self.nodes]
        keys = [home.validator_key() for home in homes]
        attesters = [home.secret_key(ATTESTER_KEY_NAME) for home in homes]
        if eth_rpc is not None:
            progress(f"deploying the contracts on {eth_rpc}, registering the nodes with deposits and admitting them")
            info = register_cluster(eth_rpc, code_hash, code_reference, keys, attesters)
            info.managed = False
            return info
        progress("starting anvil, deploying the contracts, registering the nodes with deposits and admitting them")
        anvil = start_anvil(self.home, base_port + ANVIL_PORT_OFFSET)
        self._anvil = anvil
        try:
            info = register_cluster(anvil.url, code_hash, code_reference, keys, attesters, managed=True)
        except BaseException:
            anvil.stop()
            raise
        info.anvil_pid = anvil.process.pid if anvil.process else 0
        return info

    def _configure_state_sync(self, home: Path) -> None:
        """Trust a recent block of this devnet's own running nodes, and let their light blocks be checked."""
        running = [n for i, n in enumerate(self.nodes) if self.running(i)]
        if len(running) < 2:
            raise DevnetError("state sync needs two running nodes to serve light blocks")
        with RPC(running[0].rpc, timeout=5) as rpc:
            latest = rpc.commit()["signed_header"]
        NodeHome(home).set_config({"statesync": {
            "enable": True, "rpc_servers": f"{running[0].rpc},{running[1].rpc}",
            "trust_height": int(latest["header"]["height"]), "trust_hash": latest["commit"]["block_id"]["hash"],
            "trust_period": "168h0m0s"}})

    def _configure(self, info: NodeInfo, peers: list[NodeInfo]) -> None:
        """The node's rtc.json and the CometBFT config values a loopback cluster needs.

        ABCI goes over a unix socket in the node's home that only this user can open (the
        state machine makes it 0600): on TCP any local process could drive the node."""
        from rtc.node.config import NodeConfig

        abci = cometbft.abci_socket(Path(info.home))
        NodeConfig(abci=abci, backend=f"../{info.name}-fault.wasm" if info.fault_app else "../app.wasm",
                   eth_rpc=self.ethereum.url if self.ethereum else None, rpc=info.rpc,
                   swarm=self.swarm.store, swarm_batch=self.swarm.batch,
                   snapshot_every=self.swarm.snapshot_every, fault_injection=bool(info.fault_app),
                   core=info.core or None).save(Path(info.home))
        NodeHome(Path(info.home)).set_config(cometbft.loopback_config(
            abci, info.p2p_port, info.rpc_port, [f"{o.node_id}@127.0.0.1:{o.p2p_port}" for o in peers]))

    def add_node(self, progress: Callable[[str], None] = lambda _: None, timeout: float = 60.0,
                 state_sync: bool = False) -> NodeInfo:
        """One more node: it syncs the chain from the others (every block, or with `state_sync` a
        snapshot the others serve, then the blocks after it), then registers with a deposit and
        asks to join the cluster in the contract, the cluster's owner (the devnet's deployer
        account) approves, and the next Ethereum sync makes it a validator."""
        if self.ethereum is None:
            raise DevnetError("this devnet has no Ethereum side, so its validator set cannot grow")
        from .ethereum import operator_account, register_node

        index = len(self.nodes)
        if index >= MAX_NODES:
            raise DevnetError(f"a devnet has at most {MAX_NODES} nodes")
        base_port = self.nodes[0].p2p_port
        busy = [p for p in _node_ports(base_port, index) if not _port_free(p)]
        if busy:
            raise DevnetError(f"ports {busy} for node{index} are in use; stop what uses them")
        name = f"node{index}"
        progress(f"generating keys and config for {name}")
        node_home = cometbft.init_home(self.home / name, name)
        shutil.copyfile(NodeHome(Path(self.nodes[0].home)).genesis_file, node_home.genesis_file)
        p2p, rpc, abci = _node_ports(base_port, index)
        info = NodeInfo(name, str(node_home.path), p2p, rpc, abci, cometbft.node_id(node_home))
        self._configure(info, self.nodes)
        if state_sync:
            self._configure_state_sync(node_home.path)
        self.nodes.append(info)
        self.save()
        self.start_node(index, progress)
        progress(f"{name} is syncing the chain from the others")
        self.wait_for_height(max(s.height or 0 for s in self.status()), timeout=timeout, nodes=[index])
        progress(f"registering {name} with a deposit; it asks to join the cluster and the cluster's owner approves")
        operator = operator_account(self.ethereum.url, index)
        from rtc.node.attesting import ATTESTER_KEY_NAME

        node_id = register_node(self.ethereum, operator, node_home.validator_key(),
                                node_home.secret_key(ATTESTER_KEY_NAME))
        self.ethereum.operators.append(operator)
        self.ethereum.node_ids.append(node_id)
        self.save()
        return info

    def save(self) -> None:
        data = {"chain_id": self.chain_id, "code_hash": self.code_hash, "nodes": [asdict(n) for n in self.nodes],
                "ethereum": self.ethereum.to_json() if self.ethereum else None, "swarm": self.swarm.to_json(),
                "validators": [asdict(v) for v in self.validators]}
        (self.home / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, home: Path) -> "Devnet":
        home = home.resolve()
        path = home / MANIFEST
        if not path.exists():
            raise DevnetError(f"no devnet in {home}; create one with `rtc devnet up --home {home} --app X.wasm`")
        data = json.loads(path.read_text())
        ethereum = EthereumInfo(**data["ethereum"]) if data.get("ethereum") else None
        swarm = SwarmInfo(**data["swarm"]) if data.get("swarm") else None
        validators = [ValidatorInfo(**v) for v in data.get("validators") or []]
        return cls(home, data["chain_id"], [NodeInfo(**n) for n in data["nodes"]], data["code_hash"], ethereum, swarm,
                   validators)

    @classmethod
    def remove(cls, home: Path) -> None:
        """Stop whatever a devnet in `home` still runs and delete the folder (for demos and benches)."""
        home = home.resolve()
        if (home / MANIFEST).exists():
            cls.load(home).stop()
        shutil.rmtree(home, ignore_errors=True)

    # -- processes -------------------------------------------------------------------

    def start(self, progress: Callable[[str], None] = lambda _: None, timeout: float = 60.0) -> None:
        self.start_ethereum(progress)
        for i in range(len(self.nodes)):
            self.start_node(i, progress)
        for i in range(len(self.validators)):
            self.start_validator(i, progress)
        progress("waiting for the first blocks")
        self.wait_for_height(2, timeout=timeout)

    def node(self, index: int) -> NodeInfo:
        if not 0 <= index < len(self.nodes):
            raise DevnetError(f"no node {index}: this devnet has nodes 0 to {len(self.nodes) - 1}")
        return self.nodes[index]

    def start_node(self, index: int, progress: Callable[[str], None] = lambda _: None,
                   app_argv: list[str] | None = None) -> None:
        """Start a node's state machine, then its CometBFT. `app_argv` runs another state machine
        program in its place (fault injection: `bench/byzantine_node.py`); it must take `--home`."""
        node = self.node(index)
        home = Path(node.home)
        if _alive(node.app_pid, node.home) or _alive(node.cometbft_pid, node.home):
            raise DevnetError(f"{node.name} is already running")
        progress(f"starting {node.name}")
        logs = self.home / "logs"
        argv = app_argv or [sys.executable, "-m", "rtc.node", "--home", str(home)]
        app = self._spawn(argv, logs / f"{node.name}-app.log")
        node.app_pid = app.pid
        self.save()  # recorded at once, so `down` finds it whatever happens next
        try:
            deadline = time.monotonic() + 30
            while not _abci_accepting(home):
                if app.poll() is not None or time.monotonic() > deadline:
                    raise DevnetError(f"the state machine of {node.name} did not start; see {logs / (node.name + '-app.log')}")
                time.sleep(0.05)
            comet = self._spawn([str(cometbft_binary()), "node", "--home", str(home)], logs / f"{node.name}-cometbft.log")
        except BaseException:
            self.stop_node(index)
            raise
        node.cometbft_pid = comet.pid
        self.save()

    def start_validator(self, index: int, progress: Callable[[str], None] = lambda _: None) -> None:
        validator = self.validators[index]
        if _alive(validator.pid, validator.home):
            raise DevnetError(f"{validator.name} is already running")
        progress(f"starting {validator.name} (batch validator, node {validator.node_id} in the Registry)")
        process = self._spawn([sys.executable, "-m", "rtc.validator", "--home", validator.home],
                              self.home / "logs" / f"{validator.name}.log")
        validator.pid = process.pid
        self.save()

    def stop_validator(self, index: int, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        validator = self.validators[index]
        if _alive(validator.pid, validator.home):
            self._signal_and_wait(validator.pid, validator.home, sig, timeout)
        validator.pid = 0
        self.save()

    def validator_running(self, index: int) -> bool:
        validator = self.validators[index]
        return _alive(validator.pid, validator.home)

    def _spawn(self, argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self._children[process.pid] = process
        return process

    def stop_node(self, index: int, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Stop CometBFT first (it stops asking the app anything), then the state machine."""
        node = self.node(index)
        for attr in ("cometbft_pid", "app_pid"):
            pid = getattr(node, attr)
            if _alive(pid, node.home):
                self._signal_and_wait(pid, node.home, sig, timeout)
            setattr(node, attr, 0)
        self.save()

    def _signal_and_wait(self, pid: int, marker: str, sig: int, timeout: float) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while _alive(pid, marker):
            child = self._children.get(pid)
            if child is not None and child.poll() is not None:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
        child = self._children.pop(pid, None)
        if child is not None:
            child.wait()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for i in range(len(self.validators)):
            self.stop_validator(i, sig)
        for i in range(len(self.nodes)):
            self.stop_node(i, sig)
        self.stop_ethereum()

    def ethereum_running(self) -> bool:
        return self.ethereum is not None and _alive(self.ethereum.anvil_pid, str(state_file(self.home)))

    def start_ethereum(self, progress: Callable[[str], None] = lambda _: None) -> None:
        """Start the devnet's anvil again (its chain is read back from anvil-state.json)."""
        if self.ethereum is None or not self.ethereum.managed or self.ethereum_running():
            return
        from .ethereum import start_anvil

        progress("starting anvil")
        self._anvil = start_anvil(self.home, self.ethereum.port)
        self.ethereum.anvil_pid = self._anvil.process.pid if self._anvil.process else 0
        self.save()

    def stop_ethereum(self) -> None:
        """Stop the devnet's anvil; SIGTERM lets it write its chain for the next start."""
        if self.ethereum is None or not self.ethereum.managed:
            return
        if self._anvil is not None:
            self._anvil.stop()
        elif self.ethereum_running():
            self._signal_and_wait(self.ethereum.anvil_pid, str(state_file(self.home)), signal.SIGTERM, 15.0)
        self._anvil = None
        self.ethereum.anvil_pid = 0
        self.save()

    def running(self, index: int) -> bool:
        node = self.nodes[index]
        return _alive(node.app_pid, node.home) and _alive(node.cometbft_pid, node.home)

    # -- observation -----------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        out = []
        for i, node in enumerate(self.nodes):
            running = self.running(i)
            try:
                with RPC(node.rpc, timeout=2.0) as rpc:
                    info = rpc.status()["sync_info"]
                out.append(NodeStatus(node.name, node.rpc, int(info["latest_block_height"]), info["latest_app_hash"], running,
                                      catching_up=bool(info["catching_up"])))
            except (RPCError, KeyError, ValueError) as exc:
                out.append(NodeStatus(node.name, node.rpc, None, None, running, f"RPC unavailable ({type(exc).__name__})"))
        return out

    def voting_powers(self) -> dict[str, int]:
        """Each node's voting power now, by name, from the first node that answers (0: not a validator)."""
        names = self.validator_names()
        for node in self.nodes:
            try:
                with RPC(node.rpc, timeout=2.0) as rpc:
                    answer = rpc.validators(rpc.latest_height())
            except (RPCError, KeyError, ValueError):
                continue
            return {names.get(base64.b64decode(v["pub_key"]["value"]), v["address"]): int(v["voting_power"])
                    for v in answer["validators"]}
        return {}

    def validator_names(self) -> dict[bytes, str]:
        """Each node's name by its validator key."""
        return {NodeHome(Path(n.home)).validator_key(): n.name for n in self.nodes}

    def wait_for_height(self, height: int, timeout: float = 60.0, nodes: list[int] | None = None) -> None:
        """Return once the nodes have block `height` and have stopped catching up (until then a
        client refuses to use them: they may answer from stale state)."""
        indices = range(len(self.nodes)) if nodes is None else nodes
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.status()
            if all((statuses[i].height or 0) >= height and not statuses[i].catching_up for i in indices):
                return
            for i in indices:
                if not self.running(i):
                    raise DevnetError(f"{self.nodes[i].name} stopped; see {self.home / 'logs'}")
            if time.monotonic() > deadline:
                heights = {s.name: s.height for s in statuses}
                if all((statuses[i].height or 0) >= height for i in indices):
                    late = [statuses[i].name for i in indices if statuses[i].catching_up]
                    raise DevnetError(f"{', '.join(late)} still catching up after {timeout:.0f}s; see {self.home / 'logs'}")
                raise DevnetError(f"nodes did not reach height {height} within {timeout:.0f}s (heights: {heights}); see {self.home / 'logs'}")
            time.sleep(0.1)

    def restored_from(self) -> RestoredFrom | None:
        """Where this cluster's state came from, if it continues a convicted one."""
        from rtc.node.config import GenesisAppState

        return GenesisAppState.read(NodeHome(Path(self.nodes[0].home))).restored_from

    def describe(self) -> dict[str, Any]:
        return {"home": str(self.home), "chain_id": self.chain_id, "code_hash": self.code_hash,
                "nodes": [{"name": n.name, "rpc": n.rpc, **({"fault_app": n.fault_app} if n.fault_app else {})}
                          for n in self.nodes],
                "ethereum": None if self.ethereum is None else
                {"rpc": self.ethereum.url, "registry": self.ethereum.registry, "cluster_id": self.ethereum.cluster_id,
                 "validation": self.ethereum.validation, "disputes": self.ethereum.disputes},
                "validators": [{"name": v.name, "node_id": v.node_id, "home": v.home} for v in self.validators]}


def _node_ports(base: int, index: int) -> tuple[int, int, int]:
    start = base + PORTS_PER_NODE * index
    return start, start + 1, start + 2


def _abci_accepting(home: Path) -> bool:
    """Whether the node's state machine listens on the ABCI address its rtc.json names."""
    from rtc.node.config import NodeConfig

    address = NodeConfig.load(home).abci
    try:
        if address.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.2)
                probe.connect(address.removeprefix("unix://"))
        else:
            host, _, port = address.removeprefix("tcp://").rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=0.2):
                pass
        return True
    except OSError:
        return False


def _node_cores(nodes: int, core: str) -> list[str]:
    """Each node's core for `Devnet.create(core=...)`, checked before anything is made."""
    from rtc.vm import CoreUnavailable, chosen_core

    if core not in ("", "python", "native", "mixed"):
        raise DevnetError(f"--core {core!r}: choose python, native or mixed")
    cores = ["native" if i % 2 == 0 else "python" for i in range(nodes)] if core == "mixed" else [core] * nodes
    try:
        for name in set(cores) - {""}:
            chosen_core(name)
    except CoreUnavailable as exc:
        raise DevnetError(str(exc)) from None
    return cores


def _fault_apps(nodes: int, cartel_app: Path | None, node_apps: dict[str, Path], settings: ClusterSettings,
                progress: Callable[[str], None]) -> dict[str, Path]:
    """Which node runs which lying component, checked before anything is created, and said loudly."""
    from rtc.vm import Backend

    names = [f"node{i}" for i in range(nodes)]
    faults = {name: cartel_app for name in names} if cartel_app is not None else {}
    for name, path in node_apps.items():
        if name not in names:
            raise DevnetError(f"--node-app {name}=...: the devnet has nodes {', '.join(names)}")
        faults[name] = path
    for name, path in sorted(faults.items()):
        if not path.is_file():
            raise DevnetError(f"fault-injection component {path} not found")
        Backend.from_file(path, settings.limits)
        progress(f"FAULT INJECTION: {name} runs {path.name} while the Registry and genesis name the cluster's code")
    return faults
