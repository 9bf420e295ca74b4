# pragma version 0.4.3
"""
@title Real-time clusters: checkpoints of cluster state, attested by the members and
       re-checked by randomly drawn batch validators
@notice Every `checkpoint_interval` blocks of a cluster, anyone may post the state the
        cluster reached at that height (app_hash, and the Swarm reference of that block's
        history record) with the EIP-712 attestations (rtc.protocol.attestation) of more than
        2/3 of the cluster's current members. Each signature is recovered with ecrecover and
        must be the attester key a member registered in the Registry; a member counts once.
        Then k batch validators (nodes of the Registry that enrolled here and were never
        members of the cluster) are drawn with the hash of an Ethereum block mined after the
        checkpoint, so whoever posts cannot choose them. Each re-executes the history and
        endorses the checkpoint by its deadline, or is replaced by a new draw. A checkpoint
        with k endorsements is validated: `validated_height` is the highest one.
@dev Trust: the Registry (its membership and attester keys) and the secp256k1 keys of the
     members. A checkpoint says "more than 2/3 of the members signed this state", not that
     the state is correct: that is the batch validators' job. A validated one says that k
     drawn validators re-executed it too: it is wrong only if all k collude with the
     members (about f^k for a fraction f of colluding stake in the pool), or if the proposer
     of the seed block biased the draw by withholding its block.
"""

import Registry

HALF_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168  # n // 2
DOMAIN_TYPE: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
ATTESTATION_TYPE: constant(bytes32) = keccak256(
    "Attestation(address registry,uint256 clusterId,uint64 height,bytes32 appHash,bytes32 record,bytes32 codeHash)"
)
MAX_SIGNERS: constant(uint256) = 16  # Registry.MAX_MEMBERS
MAX_DRAWN: constant(uint256) = 8  # most validators per checkpoint
RELEASE_SCAN: constant(uint256) = 64  # checkpoints looked at, from a node's last attested one, by `released`
MAX_POOL: constant(uint256) = 1024  # most nodes enrolled as validators
PROBES: constant(uint256) = 32  # random picks tried before a draw scans the pool in order
STATUS_ACTIVE: constant(uint8) = 1  # Registry.STATUS_ACTIVE

# The Disputes contract, as this one asks it whether a dispute still names a node (declared
# here: Disputes.vy imports this contract).
interface DisputeGate:
    def holds(node_id: uint256) -> uint256: view

struct Checkpoint:
    app_hash: bytes32
    record: bytes32  # Swarm reference of the block's history record
    posted_block: uint256  # 0 = no checkpoint at this height
    attesters: uint256  # members whose attestations were counted
    members: uint256  # the cluster's members when it was posted

struct Slot:
    node_id: uint256  # the validator drawn
    deadline: uint256  # the last Ethereum block its endorsement is taken in
    endorsed: bool

event CheckpointIntervalSet:
    cluster_id: indexed(uint256)
    interval: uint256

event ValidatorRulesSet:
    cluster_id: indexed(uint256)
    validators: uint256
    response_blocks: uint256
    genesis: bytes32

event Enrolled:
    node_id: indexed(uint256)

event ValidatorDrawn:
    cluster_id: indexed(uint256)
    height: indexed(uint256)
    node_id: indexed(uint256)
    slot: uint256
    deadline: uint256
    replaced: uint256  # the no-show this draw replaces (0: the first draw)

event DrawRearmed:
    cluster_id: indexed(uint256)
    height: indexed(uint256)
    slot: uint256  # MAX_DRAWN: the first draw; else the slot whose replacement waits
    seed_block: uint256  # the future block whose hash will seed it

event Endorsed:
    cluster_id: indexed(uint256)
    height: indexed(uint256)
    node_id: indexed(uint256)
    endorsements: uint256

event Validated:
    cluster_id: indexed(uint256)
    height: indexed(uint256)

event DisputesSet:
    disputes: indexed(address)

event Frozen:
    cluster_id: indexed(uint256)
    height: uint256  # the last valid checkpoint: nothing above it is ever posted or validated

event CheckpointPosted:
    cluster_id: indexed(uint256)
    height: indexed(uint256)
    app_hash: bytes32
    record: bytes32
    attesters: uint256
    members: uint256

registry: public(immutable(Registry.__interface__))
dispute_window: public(immutable(uint256))  # Ethereum blocks after a validation in which it can be disputed
checkpoint_interval: public(HashMap[uint256, uint256])  # cluster -> K blocks (0 = no checkpoints yet)
last_checkpoint: public(HashMap[uint256, uint256])  # cluster -> the highest height posted
_checkpoints: HashMap[uint256, HashMap[uint256, Checkpoint]]  # cluster -> height -> checkpoint
validators_per_checkpoint: public(HashMap[uint256, uint256])  # cluster -> k (0 = none drawn yet)
response_blocks: public(HashMap[uint256, uint256])  # cluster -> Ethereum blocks a drawn validator has
genesis: public(HashMap[uint256, bytes32])  # cluster -> Swarm reference of its genesis document
validated_height: public(HashMap[uint256, uint256])  # cluster -> the highest checkpoint with k endorsements
pool: public(DynArray[uint256, MAX_POOL])  # nodes enrolled as batch validators
enrolled: public(HashMap[uint256, bool])
_slots: HashMap[uint256, HashMap[uint256, DynArray[Slot, MAX_DRAWN]]]  # cluster -> height -> drawn validators
endorsements: public(HashMap[uint256, HashMap[uint256, uint256]])  # cluster -> height -> how many
# The block whose hash seeds a checkpoint's first draw: the one after it was posted (or, when
# that hash is forgotten, a later one named by `draw` before it was mined).
seed_block: public(HashMap[uint256, HashMap[uint256, uint256]])
validated_block: public(HashMap[uint256, HashMap[uint256, uint256]])  # cluster -> height -> block it was validated in
last_attested: public(HashMap[uint256, uint256])  # node -> highest checkpoint its attestation was counted in
deployer: public(immutable(address))  # names the Disputes contract, once
disputes: public(address)  # the contract whose rulings freeze clusters and hold deposits (empty: none yet)
frozen: public(HashMap[uint256, bool])  # cluster -> a dispute ruled its agreed state invalid
frozen_at: public(HashMap[uint256, uint256])  # cluster -> the last valid checkpoint when it was frozen


@deploy
def __init__(_registry: address, _dispute_window: uint256):
    assert _registry != empty(address), "registry is empty"
    assert _dispute_window <= 2**32, "dispute window is longer than 2**32 blocks"
    registry = Registry.__interface__(_registry)
    dispute_window = _dispute_window
    deployer = msg.sender


@external
def set_disputes(_disputes: address):
    """
    @notice The deployer names the Disputes contract, once: from then on its rulings freeze
            clusters here and a node that a dispute names keeps its deposit until the ruling.
    """
    assert msg.sender == deployer, "caller is not the deployer"
    assert _disputes != empty(address), "disputes is the zero address"
    assert self.disputes == empty(address), "the disputes contract is already set"
    self.disputes = _disputes
    log DisputesSet(disputes=_disputes)


@external
def freeze(cluster_id: uint256, height: uint256):
    """
    @notice The Disputes contract freezes a cluster whose agreed state it ruled invalid:
            `height` (the last valid checkpoint) becomes its validated height and nothing
            above it is ever posted, drawn, endorsed or validated again. A later ruling
            from a lower base lowers it; one from a higher base changes nothing.
    """
    assert msg.sender == self.disputes and msg.sender != empty(address), "caller is not the disputes contract"
    # A second ruling (another height disputed before the first was settled) can only lower it.
    if self.frozen[cluster_id] and self.frozen_at[cluster_id] <= height:
        return
    self.frozen[cluster_id] = True
    self.frozen_at[cluster_id] = height
    if self.validated_height[cluster_id] > height:
        self.validated_height[cluster_id] = height
    log Frozen(cluster_id=cluster_id, height=height)


@view
@internal
def _not_frozen(cluster_id: uint256):
    assert not self.frozen[cluster_id], "the cluster is frozen: a dispute ruled its state invalid"


@external
def set_checkpoint_interval(cluster_id: uint256, interval: uint256):
    """
    @notice Checkpoints every `interval` blocks of the cluster (heights that are multiples of
            it). The cluster's owner sets it, once: validators plan by it.
    """
    cluster: Registry.Cluster = staticcall registry.cluster(cluster_id)
    assert cluster.created_block != 0, "no such cluster"
    assert msg.sender == cluster.owner, "caller is not the cluster's owner"
    assert interval > 0, "interval is zero"
    assert interval <= convert(max_value(uint64), uint256), "interval is longer than any height"
    assert self.checkpoint_interval[cluster_id] == 0, "the interval is already set"
    self.checkpoint_interval[cluster_id] = interval
    log CheckpointIntervalSet(cluster_id=cluster_id, interval=interval)


@external
def set_validator_rules(cluster_id: uint256, validators: uint256, response_blocks: uint256, genesis: bytes32):
    """
    @notice How many validators re-check each checkpoint of the cluster, how many Ethereum
            blocks each has to endorse before it is replaced, and where in Swarm the
            cluster's genesis is (what validators replay from). The cluster's owner sets
            them, once. A wrong genesis makes no validator endorse anything: a replay from it
            does not give the app_hash the cluster's first block commits to.
    """
    cluster: Registry.Cluster = staticcall registry.cluster(cluster_id)
    assert cluster.created_block != 0, "no such cluster"
    assert msg.sender == cluster.owner, "caller is not the cluster's owner"
    assert validators >= 1 and validators <= MAX_DRAWN, "validators per checkpoint must be 1 to 8"
    assert response_blocks >= 1 and response_blocks <= 2**32, "response blocks must be 1 to 2**32"
    assert genesis != empty(bytes32), "the genesis reference is empty"
    assert self.validators_per_checkpoint[cluster_id] == 0, "the validator rules are already set"
    self.validators_per_checkpoint[cluster_id] = validators
    self.response_blocks[cluster_id] = response_blocks
    self.genesis[cluster_id] = genesis
    log ValidatorRulesSet(cluster_id=cluster_id, validators=validators, response_blocks=response_blocks, genesis=genesis)


@view
@internal
def _digest(cluster_id: uint256, height: uint64, app_hash: bytes32, record: bytes32, code_hash: bytes32) -> bytes32:
    separator: bytes32 = keccak256(
        abi_encode(DOMAIN_TYPE, keccak256("rtc-attestation"), keccak256("1"), chain.id, self)
    )
    attested: bytes32 = keccak256(
        abi_encode(ATTESTATION_TYPE, registry.address, cluster_id, height, app_hash, record, code_hash)
    )
    return keccak256(concat(x"1901", separator, attested))


@view
@external
def attestation_digest(cluster_id: uint256, height: uint64, app_hash: bytes32, record: bytes32) -> bytes32:
    """
    @notice The EIP-712 digest a member signs for this state of the cluster (its code hash
            as the Registry holds it now).
    """
    return self._digest(cluster_id, height, app_hash, record, staticcall registry.code_hash(cluster_id))


@external
def post_checkpoint(
    cluster_id: uint256,
    height: uint64,
    app_hash: bytes32,
    record: bytes32,
    v: DynArray[uint8, MAX_SIGNERS],
    r: DynArray[uint256, MAX_SIGNERS],
    s: DynArray[uint256, MAX_SIGNERS],
):
    """
    @notice Post the cluster's state at `height` (a multiple of the interval, not posted
            yet) with its members' attestations, signers in ascending address order (so each
            counts once). Anyone may post; more than 2/3 of the current members must have signed.
    """
    self._not_frozen(cluster_id)
    interval: uint256 = self.checkpoint_interval[cluster_id]
    assert interval != 0, "the cluster has no checkpoint interval"
    assert convert(height, uint256) % interval == 0, "height is not a checkpoint height"
    # Any height not posted yet, not only ones after the newest: a checkpoint at a height the
    # cluster never reaches (which a cartel of a small cluster could sign) then blocks nothing.
    assert self._checkpoints[cluster_id][convert(height, uint256)].posted_block == 0, "already posted at this height"
    assert len(v) == len(r) and len(r) == len(s), "v, r and s differ in length"
    digest: bytes32 = self._digest(cluster_id, height, app_hash, record, staticcall registry.code_hash(cluster_id))
    previous: uint160 = 0
    for i: uint256 in range(MAX_SIGNERS):
        if i == len(v):
            break
        assert s[i] <= HALF_ORDER, "signature s is in the upper half of the curve order"
        signer: address = ecrecover(digest, v[i], r[i], s[i])
        assert signer != empty(address), "a signature recovers no key"
        assert convert(signer, uint160) > previous, "signers are not distinct and in ascending order"
        previous = convert(signer, uint160)
        node_id: uint256 = staticcall registry.node_of_attester(signer)
        assert node_id != 0, "a signer is no node's attester"
        assert staticcall registry.is_active_member(node_id, cluster_id), "a signer is not a member of the cluster"
        if convert(height, uint256) > self.last_attested[node_id]:
            self.last_attested[node_id] = convert(height, uint256)
    members: uint256 = staticcall registry.member_count(cluster_id)
    assert len(v) * 3 > members * 2, "attestations of more than 2/3 of the members are needed"
    self._checkpoints[cluster_id][convert(height, uint256)] = Checkpoint(
        app_hash=app_hash, record=record, posted_block=block.number, attesters=len(v), members=members
    )
    self.seed_block[cluster_id][convert(height, uint256)] = block.number + 1
    if convert(height, uint256) > self.last_checkpoint[cluster_id]:
        self.last_checkpoint[cluster_id] = convert(height, uint256)
    log CheckpointPosted(
        cluster_id=cluster_id, height=convert(height, uint256), app_hash=app_hash, record=record,
        attesters=len(v), members=members
    )


@view
@external
def checkpoint(cluster_id: uint256, height: uint256) -> Checkpoint:
    """
    @notice The checkpoint at `height` (posted_block 0: none).
    """
    return self._checkpoints[cluster_id][height]


# ---------------------------------------------------------------------------
# batch validators


@external
def enroll(node_id: uint256):
    """
    @notice The node's operator offers it as a batch validator: its deposit in the Registry
            is what it stakes, its attester is the key its daemon endorses with.
    """
    node: Registry.Node = staticcall registry.node(node_id)
    assert msg.sender == node.operator, "caller is not the node's operator"
    assert node.status == STATUS_ACTIVE, "node is not active"
    assert staticcall registry.attester_of(node_id) != empty(address), "the node has no attester: set one first"
    assert not self.enrolled[node_id], "node is enrolled already"
    assert len(self.pool) < MAX_POOL, "the validator pool is full"
    self.enrolled[node_id] = True
    self.pool.append(node_id)
    log Enrolled(node_id=node_id)


@view
@external
def pool_size() -> uint256:
    return len(self.pool)


@view
@internal
def _eligible(node_id: uint256, cluster_id: uint256) -> bool:
    """
    @dev Active in the Registry and never a member of this cluster (a node keeps the
         cluster it joined after leaving it).
    """
    status: uint8 = 0
    joined: uint256 = 0
    status, joined = staticcall registry.standing(node_id)
    return status == STATUS_ACTIVE and joined != cluster_id


@view
@internal
def _pick(cluster_id: uint256, seed: bytes32, taken: DynArray[uint256, MAX_DRAWN]) -> uint256:
    """
    @dev A random eligible validator not in `taken` (0 if there is none): PROBES random
         picks, then the pool in order from a random place, so a draw always ends.
    """
    size: uint256 = len(self.pool)
    if size == 0:
        return 0
    for i: uint256 in range(PROBES):
        candidate: uint256 = self.pool[convert(keccak256(abi_encode(seed, i)), uint256) % size]
        if candidate not in taken and self._eligible(candidate, cluster_id):
            return candidate
    start: uint256 = convert(keccak256(abi_encode(seed, PROBES)), uint256) % size
    for i: uint256 in range(MAX_POOL):
        if i == size:
            break
        candidate: uint256 = self.pool[(start + i) % size]
        if candidate not in taken and self._eligible(candidate, cluster_id):
            return candidate
    return 0


@view
@internal
def _taken(cluster_id: uint256, height: uint256) -> DynArray[uint256, MAX_DRAWN]:
    taken: DynArray[uint256, MAX_DRAWN] = []
    for slot: Slot in self._slots[cluster_id][height]:
        taken.append(slot.node_id)
    return taken


@external
def draw(cluster_id: uint256, height: uint256):
    """
    @notice Draw the checkpoint's validators (anyone may call, once, from the second block
            after it was posted): the seed is the hash of the block mined right after the
            checkpoint, which nobody knew when it was posted. Past 256 blocks Ethereum has
            forgotten that hash; then this call draws nobody and names the next block as the
            seed instead (call again after it), so that nobody who waits can pick the hash.
    """
    self._not_frozen(cluster_id)
    assert self._checkpoints[cluster_id][height].posted_block != 0, "no checkpoint at this height"
    assert len(self._slots[cluster_id][height]) == 0, "the validators are drawn already"
    k: uint256 = self.validators_per_checkpoint[cluster_id]
    assert k != 0, "the cluster has no validator rules"
    seed_block: uint256 = self.seed_block[cluster_id][height]
    assert block.number > seed_block, "the seed block is not mined yet: draw from the second block after posting"
    if block.number - seed_block > 256:
        self.seed_block[cluster_id][height] = block.number + 1
        log DrawRearmed(cluster_id=cluster_id, height=height, slot=MAX_DRAWN, seed_block=block.number + 1)
        return
    seed: bytes32 = keccak256(abi_encode(blockhash(seed_block), cluster_id, height))
    deadline: uint256 = block.number + self.response_blocks[cluster_id]
    taken: DynArray[uint256, MAX_DRAWN] = []
    for i: uint256 in range(MAX_DRAWN):
        if i == k:
            break
        picked: uint256 = self._pick(cluster_id, keccak256(abi_encode(seed, i)), taken)
        assert picked != 0, "not enough eligible validators in the pool"
        taken.append(picked)
        self._slots[cluster_id][height].append(Slot(node_id=picked, deadline=deadline, endorsed=False))
        log ValidatorDrawn(cluster_id=cluster_id, height=height, node_id=picked, slot=i, deadline=deadline, replaced=0)


@external
def replace(cluster_id: uint256, height: uint256, slot: uint256):
    """
    @notice Replace a drawn validator that did not endorse by its deadline with a new draw
            (anyone may call, from the second block after the deadline). A no-show is not
            slashed: its Swarm or Ethereum may be down. The seed is the hash of the block
            after the deadline, fixed before anyone knew it, so the caller cannot pick the
            newcomer by choosing when to call; past 256 blocks, as for `draw`, this call names
            the next block as the seed instead.
    """
    self._not_frozen(cluster_id)
    assert slot < len(self._slots[cluster_id][height]), "no such slot"
    drawn: Slot = self._slots[cluster_id][height][slot]
    assert not drawn.endorsed, "the validator endorsed"
    assert block.number > drawn.deadline, "the validator's deadline has not passed"
    assert block.number > drawn.deadline + 1, "the replacement's seed block is not mined yet: call in the next block"
    if block.number - (drawn.deadline + 1) > 256:
        self._slots[cluster_id][height][slot].deadline = block.number  # seeds from block.number + 1
        log DrawRearmed(cluster_id=cluster_id, height=height, slot=slot, seed_block=block.number + 1)
        return
    seed: bytes32 = keccak256(abi_encode(blockhash(drawn.deadline + 1), cluster_id, height, slot))
    picked: uint256 = self._pick(cluster_id, seed, self._taken(cluster_id, height))
    assert picked != 0, "no other eligible validator in the pool"
    deadline: uint256 = block.number + self.response_blocks[cluster_id]
    self._slots[cluster_id][height][slot] = Slot(node_id=picked, deadline=deadline, endorsed=False)
    log ValidatorDrawn(
        cluster_id=cluster_id, height=height, node_id=picked, slot=slot, deadline=deadline, replaced=drawn.node_id
    )


@external
def endorse(cluster_id: uint256, height: uint256, node_id: uint256, app_hash: bytes32):
    """
    @notice A drawn validator (from its attester's address) says it re-executed the
            cluster's history up to `height` and reached the checkpoint's app_hash. The
            k-th endorsement validates the checkpoint.
    """
    self._not_frozen(cluster_id)
    assert msg.sender == staticcall registry.attester_of(node_id), "caller is not the node's attester"
    found: bool = False
    index: uint256 = 0
    for i: uint256 in range(MAX_DRAWN):
        if i == len(self._slots[cluster_id][height]):
            break
        if self._slots[cluster_id][height][i].node_id == node_id:
            found = True
            index = i
            break
    assert found, "the node is not drawn for this checkpoint"
    drawn: Slot = self._slots[cluster_id][height][index]
    assert not drawn.endorsed, "the node endorsed already"
    assert block.number <= drawn.deadline, "the deadline has passed"
    assert app_hash == self._checkpoints[cluster_id][height].app_hash, (
        "app_hash differs from the checkpoint's: hold the evidence for a dispute instead"
    )
    self._slots[cluster_id][height][index].endorsed = True
    count: uint256 = self.endorsements[cluster_id][height] + 1
    self.endorsements[cluster_id][height] = count
    log Endorsed(cluster_id=cluster_id, height=height, node_id=node_id, endorsements=count)
    if count == len(self._slots[cluster_id][height]):
        log Validated(cluster_id=cluster_id, height=height)
        self.validated_block[cluster_id][height] = block.number
        if height > self.validated_height[cluster_id]:
            self.validated_height[cluster_id] = height


@view
@external
def drawn(cluster_id: uint256, height: uint256) -> DynArray[Slot, MAX_DRAWN]:
    """
    @notice The checkpoint's validators, their deadlines and whether each endorsed.
    """
    return self._slots[cluster_id][height]


@view
@external
def released(node_id: uint256, cluster_id: uint256) -> bool:
    """
    @notice Whether a (leaving) member's deposit may go (Registry.withdraw asks): every
            checkpoint its attestation was counted in is at or below `validated_height`,
            and the dispute window has passed since the first checkpoint at or above its
            last one was validated (a validation re-executes everything before it).
            A cluster that asks for no validators (no validator rules) is never validated:
            its members need the cooling-off alone. Nobody is released while an open
            dispute names it (accused, disputer or juror): the ruling may slash it.
    @dev Attestations of heights that no posted checkpoint carried are not tracked here; a
         dispute about one must come within the Registry's cooling-off period.
    """
    if self.disputes != empty(address) and staticcall DisputeGate(self.disputes).holds(node_id) > 0:
        return False
    last: uint256 = self.last_attested[node_id]
    if last == 0 or self.validators_per_checkpoint[cluster_id] == 0:
        return True
    validated: uint256 = self.validated_height[cluster_id]
    if validated < last:
        return False
    interval: uint256 = self.checkpoint_interval[cluster_id]
    height: uint256 = last
    for i: uint256 in range(RELEASE_SCAN):
        if height > validated:
            break
        at: uint256 = self.validated_block[cluster_id][height]
        if at != 0:
            return block.number >= at + dispute_window
        height += interval
    return False
