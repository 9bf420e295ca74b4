# pragma version 0.4.3
"""
@title Real-time clusters: checkpoints of cluster state, attested by the members
@notice Every `checkpoint_interval` blocks of a cluster, anyone may post the state the
        cluster reached at that height (app_hash, and the Swarm reference of that block's
        history record) with the EIP-712 attestations (rtc.protocol.attestation) of more than
        2/3 of the cluster's current members. Each signature is recovered with ecrecover and
        must be the attester key a member registered in the Registry; a member counts once.
        A posted checkpoint is what batch validators re-execute and endorse.
@dev Trust: the Registry (its membership and attester keys) and the secp256k1 keys of the
     members. A checkpoint says "more than 2/3 of the members signed this state", not that
     the state is correct: that is the batch validators' job.
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

struct Checkpoint:
    app_hash: bytes32
    record: bytes32  # Swarm reference of the block's history record
    posted_block: uint256  # 0 = no checkpoint at this height
    attesters: uint256  # members whose attestations were counted
    members: uint256  # the cluster's members when it was posted

event CheckpointIntervalSet:
    cluster_id: indexed(uint256)
    interval: uint256

event CheckpointPosted:
    cluster_id: indexed(uint256)
    height: indexed(uint256)
    app_hash: bytes32
    record: bytes32
    attesters: uint256
    members: uint256

registry: public(immutable(Registry.__interface__))
checkpoint_interval: public(HashMap[uint256, uint256])  # cluster -> K blocks (0 = no checkpoints yet)
last_checkpoint: public(HashMap[uint256, uint256])  # cluster -> the highest height posted
_checkpoints: HashMap[uint256, HashMap[uint256, Checkpoint]]  # cluster -> height -> checkpoint


@deploy
def __init__(_registry: address):
    assert _registry != empty(address), "registry is empty"
    registry = Registry.__interface__(_registry)


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
    members: uint256 = staticcall registry.member_count(cluster_id)
    assert len(v) * 3 > members * 2, "attestations of more than 2/3 of the members are needed"
    self._checkpoints[cluster_id][convert(height, uint256)] = Checkpoint(
        app_hash=app_hash, record=record, posted_block=block.number, attesters=len(v), members=members
    )
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
