# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Real-time clusters: disputes over a cluster's state, ruled by juries of batch
       validators, and what a ruling costs whoever was wrong
@notice Anyone whose node has a deposit may dispute a state that members of a cluster
        attested (EIP-712 attestations, as Validation checks them), claiming another
        app_hash for the same height and naming the last validated checkpoint the claim
        starts from. A jury of enrolled batch validators (never the cluster's members, the
        disputer or the validators drawn for the disputed checkpoint) is drawn with the hash
        of a block mined after the dispute was opened; each juror re-executes the history
        from that checkpoint, commits a hidden vote, then reveals it. More than 2/3 of the
        drawn jury decides; otherwise, or when the losing side appeals with a growing bond,
        a jury twice as large (plus one) is drawn, up to the whole pool.
        Invalid: the attesters and the validators that endorsed it lose `slash_bps` of their
        deposits; a state attested by more than 2/3 of the members freezes the cluster at
        the last valid checkpoint; the disputer receives at most 10% of what was slashed, the
        rest is burnt. Valid: the disputer loses its bond (a member of the cluster, which
        posts none, loses `member_penalty_bps` of its deposit). Jurors who committed and did
        not reveal, or voted against the final ruling, lose `juror_penalty_bps`.
@dev Trust: the Registry (membership, attesters, deposits; its owner names this contract as
     slasher and beneficiary), Validation (checkpoints, the pool), and the juries: a ruling
     is right while less than 1/3 of the pool's stake colludes. There is no on-chain
     WebAssembly prover: the jurors' re-execution is the evidence of the state.
"""

import Registry
import Validation

MAX_SIGNERS: constant(uint256) = 16  # Registry.MAX_MEMBERS
MAX_DRAWN: constant(uint256) = 8  # Validation.MAX_DRAWN
MAX_JURY: constant(uint256) = 63  # the largest jury (rounds grow 3, 7, 15, 31, 63)
MAX_ROUNDS: constant(uint256) = 5
MAX_POOL: constant(uint256) = 1024  # Validation.MAX_POOL
PROBES: constant(uint256) = 32  # random picks tried before a draw scans the pool in order
MAX_REPLACEMENTS: constant(uint256) = 2  # times a round replaces jurors who did not commit
WINDOW_SCAN: constant(uint256) = 64  # checkpoints looked at for the validation covering a height
MAX_BOUNTY_BPS: constant(uint256) = 1000  # 10%: a cartel disputing itself must lose money
STATUS_ACTIVE: constant(uint8) = 1  # Registry.STATUS_ACTIVE

# A dispute's status
OPEN: public(constant(uint8)) = 1
VALID: public(constant(uint8)) = 2  # the attested state is right (also the answer to a vote)
INVALID: public(constant(uint8)) = 3  # the attested state is wrong (also the answer to a vote)

# Where an open dispute is
PHASE_DRAW: public(constant(uint8)) = 1  # the next jury is drawn from the hash of `seed_block`
PHASE_COMMIT: public(constant(uint8)) = 2  # jurors commit hidden votes until `commit_deadline`
PHASE_REVEAL: public(constant(uint8)) = 3  # jurors reveal them until `reveal_deadline`
PHASE_APPEAL: public(constant(uint8)) = 4  # a decisive round's loser may appeal until `appeal_deadline`
PHASE_DONE: public(constant(uint8)) = 5


struct Dispute:
    cluster_id: uint256
    height: uint256
    attested_app_hash: bytes32
    record: bytes32  # Swarm reference of the record of `height`, as the accused attested it
    claimed_app_hash: bytes32
    base: uint256  # the validated checkpoint the jurors replay from (0: the cluster's genesis)
    disputer: uint256  # node id
    disputer_address: address  # who receives the bond back and the bounty
    bond: uint256
    member_disputer: bool  # a member of the cluster: no bond, a penalty when wrong
    opened_block: uint256
    status: uint8
    phase: uint8
    round: uint256
    seed_block: uint256
    commit_deadline: uint256
    reveal_deadline: uint256
    appeal_deadline: uint256
    replacements: uint256  # in this round
    whole_pool: bool  # this round's jury is every eligible validator
    tentative: uint8  # a decisive round's ruling, open to appeal
    members: uint256  # the cluster's members when the evidence was last added
    agreed: bool  # more than 2/3 of them attested the state: the cluster's state, not one liar's
    slashed: uint256  # wei taken from the accused
    bounty: uint256

struct Juror:
    node_id: uint256
    commitment: bytes32  # keccak256(abi_encode(dispute, round, node, vote, salt)); empty: none yet
    vote: uint8  # 0 until revealed

struct Appeal:
    appellant: address
    amount: uint256
    side: uint8  # VALID or INVALID: the ruling it asks for

event DisputeOpened:
    dispute_id: indexed(uint256)
    cluster_id: indexed(uint256)
    height: indexed(uint256)
    disputer: uint256
    attested_app_hash: bytes32
    claimed_app_hash: bytes32
    base: uint256
    bond: uint256

event EvidenceAdded:
    dispute_id: indexed(uint256)
    node_id: indexed(uint256)

event JurorDrawn:
    dispute_id: indexed(uint256)
    round: indexed(uint256)
    node_id: indexed(uint256)
    slot: uint256
    commit_deadline: uint256
    replaced: uint256  # the juror this one replaces (0: none)

event DrawRearmed:
    dispute_id: indexed(uint256)
    seed_block: uint256

event VoteCommitted:
    dispute_id: indexed(uint256)
    round: indexed(uint256)
    node_id: indexed(uint256)

event RevealsOpened:
    dispute_id: indexed(uint256)
    round: indexed(uint256)
    reveal_deadline: uint256

event VoteRevealed:
    dispute_id: indexed(uint256)
    round: indexed(uint256)
    node_id: indexed(uint256)
    vote: uint8

event RoundTallied:
    dispute_id: indexed(uint256)
    round: indexed(uint256)
    valid: uint256
    invalid: uint256
    jury: uint256
    outcome: uint8  # VALID or INVALID when decisive, 0 when a larger jury is drawn

event Appealed:
    dispute_id: indexed(uint256)
    round: indexed(uint256)
    appellant: indexed(address)
    amount: uint256
    side: uint8

event DisputeSettled:
    dispute_id: indexed(uint256)
    cluster_id: indexed(uint256)
    height: indexed(uint256)
    status: uint8
    slashed: uint256
    bounty: uint256
    frozen: bool

event Claimed:
    account: indexed(address)
    amount: uint256

registry: public(immutable(Registry.__interface__))
validation: public(immutable(Validation.__interface__))
bond: public(immutable(uint256))  # wei a disputer that is not a member of the cluster posts
jury_size: public(immutable(uint256))  # jurors of the first round
commit_blocks: public(immutable(uint256))
reveal_blocks: public(immutable(uint256))
appeal_blocks: public(immutable(uint256))
# Blocks after opening in which the accused must have the disputed history in Swarm: after
# them a juror that cannot fetch it votes INVALID (the accused owe availability).
availability_blocks: public(immutable(uint256))
slash_bps: public(immutable(uint256))  # of an accused's deposit (10000 = 100%)
bounty_bps: public(immutable(uint256))  # of what the accused lost, for the disputer (<= 1000)
member_penalty_bps: public(immutable(uint256))  # of a member's deposit when its dispute fails
juror_penalty_bps: public(immutable(uint256))  # of a juror's deposit for no reveal or a losing vote

dispute_count: public(uint256)
_disputes: HashMap[uint256, Dispute]
_accused: HashMap[uint256, DynArray[uint256, MAX_SIGNERS]]  # dispute -> members whose attestations it holds
_juries: HashMap[uint256, HashMap[uint256, DynArray[Juror, MAX_JURY]]]  # dispute -> round -> jury
_appeals: HashMap[uint256, DynArray[Appeal, MAX_ROUNDS]]
dispute_at: public(HashMap[uint256, HashMap[uint256, uint256]])  # cluster -> height -> dispute (0: none)
holds: public(HashMap[uint256, uint256])  # node -> open disputes that name it (Validation.released asks)
_named: HashMap[uint256, HashMap[uint256, bool]]  # dispute -> node -> counted in `holds`
claimable: public(HashMap[address, uint256])  # bonds returned and bounties, paid by `claim`
total_burned: public(uint256)  # lost bonds and slashed wei nobody receives: locked here forever


@deploy
def __init__(
    _registry: address,
    _validation: address,
    _bond: uint256,
    _jury_size: uint256,
    _commit_blocks: uint256,
    _reveal_blocks: uint256,
    _appeal_blocks: uint256,
    _availability_blocks: uint256,
    _slash_bps: uint256,
    _bounty_bps: uint256,
    _member_penalty_bps: uint256,
    _juror_penalty_bps: uint256,
):
    assert _registry != empty(address) and _validation != empty(address), "registry or validation is empty"
    assert _bond > 0, "the bond is zero: disputes would cost nothing"
    assert _jury_size >= 1 and _jury_size <= 3, "the first jury must have 1 to 3 jurors"
    assert _commit_blocks >= 1 and _reveal_blocks >= 1 and _appeal_blocks >= 1, "every phase needs a block"
    assert _commit_blocks <= 2**32 and _reveal_blocks <= 2**32 and _appeal_blocks <= 2**32, "a phase is too long"
    assert _availability_blocks <= 2**32, "the availability deadline is too far"
    assert _slash_bps >= 1 and _slash_bps <= 10000, "slash_bps must be 1 to 10000"
    assert _bounty_bps <= MAX_BOUNTY_BPS, "the bounty is at most 10% of what is slashed"
    assert _member_penalty_bps <= 10000 and _juror_penalty_bps <= 10000, "a penalty is at most 10000 bps"
    registry = Registry.__interface__(_registry)
    validation = Validation.__interface__(_validation)
    bond = _bond
    jury_size = _jury_size
    commit_blocks = _commit_blocks
    reveal_blocks = _reveal_blocks
    appeal_blocks = _appeal_blocks
    availability_blocks = _availability_blocks
    slash_bps = _slash_bps
    bounty_bps = _bounty_bps
    member_penalty_bps = _member_penalty_bps
    juror_penalty_bps = _juror_penalty_bps


@payable
@external
def __default__():
    # Slashed funds arrive from the Registry (this contract is its beneficiary); nothing else.
    assert msg.sender == registry.address, "plain ether transfers are refused"


# ---------------------------------------------------------------------------
# opening a dispute


@internal
def _name(dispute_id: uint256, node_id: uint256):
    if not self._named[dispute_id][node_id]:
        self._named[dispute_id][node_id] = True
        self.holds[node_id] += 1


@view
@internal
def _covering(cluster_id: uint256, height: uint256) -> uint256:
    """
    @dev The first checkpoint height at or above `height`: its validators re-executed it.
    """
    interval: uint256 = staticcall validation.checkpoint_interval(cluster_id)
    return (height + interval - 1) // interval * interval


@view
@internal
def _window_closed(cluster_id: uint256, height: uint256) -> bool:
    """
    @dev Whether a validation covering `height` is older than the dispute window: the
         first validated checkpoint at or above it (a validation re-executes everything
         before it), as Validation.released reads it.
    """
    interval: uint256 = staticcall validation.checkpoint_interval(cluster_id)
    validated: uint256 = staticcall validation.validated_height(cluster_id)
    checkpoint: uint256 = self._covering(cluster_id, height)
    for i: uint256 in range(WINDOW_SCAN):
        if checkpoint > validated:
            return False
        at: uint256 = staticcall validation.validated_block(cluster_id, checkpoint)
        if at != 0:
            return block.number > at + staticcall validation.dispute_window()
        checkpoint += interval
    return False


@internal
def _add_signers(
    dispute_id: uint256,
    digest: bytes32,
    v: DynArray[uint8, MAX_SIGNERS],
    r: DynArray[uint256, MAX_SIGNERS],
    s: DynArray[uint256, MAX_SIGNERS],
):
    """
    @dev Each signature must recover to the attester of a node that joined the disputed
         cluster, the disputer's included; one already accused is refused, so the list holds
         each node once.
    """
    assert len(v) == len(r) and len(r) == len(s), "v, r and s differ in length"
    assert len(v) > 0, "no attestations: the evidence is the accused members' signatures"
    cluster_id: uint256 = self._disputes[dispute_id].cluster_id
    for i: uint256 in range(MAX_SIGNERS):
        if i == len(v):
            break
        assert s[i] <= 57896044618658097711785492504343953926418782139537452191302581570759080747168, (
            "signature s is in the upper half of the curve order"
        )
        signer: address = ecrecover(digest, v[i], r[i], s[i])
        assert signer != empty(address), "a signature recovers no key"
        node_id: uint256 = staticcall registry.node_of_attester(signer)
        assert node_id != 0, "a signer is no node's attester"
        status: uint8 = 0
        joined: uint256 = 0
        status, joined = staticcall registry.standing(node_id)
        assert joined == cluster_id, "a signer never was a member of the cluster"
        # The disputer's own attestation accuses it too: a liar that turns on its cartel is
        # slashed with it, and its bounty (at most 10%) never covers that.
        assert node_id not in self._accused[dispute_id], "a signer is accused already"
        self._accused[dispute_id].append(node_id)
        self._name(dispute_id, node_id)
        log EvidenceAdded(dispute_id=dispute_id, node_id=node_id)
    members: uint256 = staticcall registry.member_count(cluster_id)
    self._disputes[dispute_id].members = members
    self._disputes[dispute_id].agreed = len(self._accused[dispute_id]) * 3 > members * 2


@payable
@external
@nonreentrant
def open_dispute(
    cluster_id: uint256,
    height: uint64,
    attested_app_hash: bytes32,
    record: bytes32,
    v: DynArray[uint8, MAX_SIGNERS],
    r: DynArray[uint256, MAX_SIGNERS],
    s: DynArray[uint256, MAX_SIGNERS],
    claimed_app_hash: bytes32,
    base: uint256,
    disputer: uint256,
) -> uint256:
    """
    @notice Dispute the state members of the cluster attested at `height`, claiming
            `claimed_app_hash` instead and replaying from `base` (a validated checkpoint
            below it, or 0 for the genesis). The caller is the disputer node's operator or
            attester; a node that never was a member of the cluster posts `bond` wei with it.
    @return the dispute's id
    """
    assert not staticcall validation.frozen(cluster_id), "the cluster is frozen already"
    assert staticcall validation.checkpoint_interval(cluster_id) != 0, "the cluster has no checkpoints to dispute from"
    h: uint256 = convert(height, uint256)
    assert h > base, "the disputed height must be above the base checkpoint"
    if base != 0:
        assert staticcall validation.validated_block(cluster_id, base) != 0, "the base is not a validated checkpoint"
    assert claimed_app_hash != empty(bytes32), "the claimed app_hash is empty"
    assert claimed_app_hash != attested_app_hash, "the claimed app_hash is the attested one: nothing to dispute"
    assert self.dispute_at[cluster_id][h] == 0, concat(
        "dispute ", uint2str(self.dispute_at[cluster_id][h]), " covers this height already: add evidence to it"
    )
    assert not self._window_closed(cluster_id, h), "the height is validated and its dispute window has passed"

    node: Registry.Node = staticcall registry.node(disputer)
    assert node.status == STATUS_ACTIVE, "the disputer is not an active node"
    assert msg.sender == node.operator or msg.sender == staticcall registry.attester_of(disputer), (
        "caller is not the disputer's operator or attester"
    )
    member_disputer: bool = node.cluster_id == cluster_id
    if not member_disputer:
        assert msg.value >= bond, concat("a dispute needs a bond of ", uint2str(bond), " wei")

    dispute_id: uint256 = self.dispute_count + 1
    self.dispute_count = dispute_id
    self.dispute_at[cluster_id][h] = dispute_id
    self._disputes[dispute_id] = Dispute(
        cluster_id=cluster_id, height=h, attested_app_hash=attested_app_hash, record=record,
        claimed_app_hash=claimed_app_hash, base=base, disputer=disputer, disputer_address=msg.sender,
        bond=msg.value, member_disputer=member_disputer, opened_block=block.number, status=OPEN,
        phase=PHASE_DRAW, round=0, seed_block=block.number + 1, commit_deadline=0, reveal_deadline=0,
        appeal_deadline=0, replacements=0, whole_pool=False, tentative=0, members=0, agreed=False,
        slashed=0, bounty=0,
    )
    self._name(dispute_id, disputer)
    log DisputeOpened(
        dispute_id=dispute_id, cluster_id=cluster_id, height=h, disputer=disputer,
        attested_app_hash=attested_app_hash, claimed_app_hash=claimed_app_hash, base=base, bond=msg.value,
    )
    self._add_signers(
        dispute_id, staticcall validation.attestation_digest(cluster_id, height, attested_app_hash, record), v, r, s
    )
    self._name_validators(dispute_id)
    return dispute_id


@internal
def _name_validators(dispute_id: uint256):
    """
    @dev The validators drawn for the checkpoint that covers the disputed height answer for
         it too: they are held, and never jurors. Called again before every draw, for those
         drawn since.
    """
    d: Dispute = self._disputes[dispute_id]
    slots: DynArray[Validation.Slot, MAX_DRAWN] = staticcall validation.drawn(d.cluster_id, self._covering(d.cluster_id, d.height))
    for slot: Validation.Slot in slots:
        self._name(dispute_id, slot.node_id)


@external
@nonreentrant
def add_evidence(
    dispute_id: uint256,
    v: DynArray[uint8, MAX_SIGNERS],
    r: DynArray[uint256, MAX_SIGNERS],
    s: DynArray[uint256, MAX_SIGNERS],
):
    """
    @notice More members' attestations of the same disputed state (anyone, while the
            dispute is open and no jury has revealed yet): they are accused too.
    """
    d: Dispute = self._disputes[dispute_id]
    assert d.status == OPEN, "no open dispute with this id"
    assert d.phase <= PHASE_COMMIT and d.round == 0, "evidence closes when the first jury reveals"
    self._add_signers(
        dispute_id,
        staticcall validation.attestation_digest(d.cluster_id, convert(d.height, uint64), d.attested_app_hash, d.record),
        v, r, s,
    )


# ---------------------------------------------------------------------------
# juries


@view
@internal
def _eligible(dispute_id: uint256, node_id: uint256, taken: DynArray[uint256, MAX_JURY]) -> bool:
    """
    @dev Active, never a member of the disputed cluster, not the disputer, not drawn for
         the covering checkpoint (those are accused), not in the jury already.
    """
    if node_id in taken or node_id == self._disputes[dispute_id].disputer:
        return False
    status: uint8 = 0
    joined: uint256 = 0
    status, joined = staticcall registry.standing(node_id)
    if status != STATUS_ACTIVE or joined == self._disputes[dispute_id].cluster_id:
        return False
    return not self._named[dispute_id][node_id] or self._is_juror(dispute_id, node_id)


@view
@internal
def _is_juror(dispute_id: uint256, node_id: uint256) -> bool:
    """
    @dev Named by this dispute only as a juror of an earlier round (not as an accused).
    """
    for round: uint256 in range(MAX_ROUNDS):
        if round == self._disputes[dispute_id].round:
            break
        for juror: Juror in self._juries[dispute_id][round]:
            if juror.node_id == node_id:
                return True
    return False


@view
@internal
def _pick(dispute_id: uint256, seed: bytes32, taken: DynArray[uint256, MAX_JURY]) -> uint256:
    """
    @dev A random eligible validator of the pool not in `taken` (0: none left): PROBES
         random picks, then the pool in order from a random place.
    """
    size: uint256 = staticcall validation.pool_size()
    if size == 0:
        return 0
    for i: uint256 in range(PROBES):
        candidate: uint256 = staticcall validation.pool(convert(keccak256(abi_encode(seed, i)), uint256) % size)
        if self._eligible(dispute_id, candidate, taken):
            return candidate
    start: uint256 = convert(keccak256(abi_encode(seed, PROBES)), uint256) % size
    for i: uint256 in range(MAX_POOL):
        if i == size:
            break
        candidate: uint256 = staticcall validation.pool((start + i) % size)
        if self._eligible(dispute_id, candidate, taken):
            return candidate
    return 0


@view
@internal
def _jury_ids(dispute_id: uint256, round: uint256) -> DynArray[uint256, MAX_JURY]:
    ids: DynArray[uint256, MAX_JURY] = []
    for juror: Juror in self._juries[dispute_id][round]:
        ids.append(juror.node_id)
    return ids


@internal
def _draw(dispute_id: uint256):
    d: Dispute = self._disputes[dispute_id]
    assert block.number > d.seed_block, concat(
        "the jury's seed block ", uint2str(d.seed_block), " is not mined yet"
    )
    if block.number - d.seed_block > 256:
        self._disputes[dispute_id].seed_block = block.number + 1
        log DrawRearmed(dispute_id=dispute_id, seed_block=block.number + 1)
        return
    self._name_validators(dispute_id)
    size: uint256 = jury_size
    if d.round > 0:
        size = min(len(self._juries[dispute_id][d.round - 1]) * 2 + 1, MAX_JURY)
    seed: bytes32 = keccak256(abi_encode(blockhash(d.seed_block), dispute_id, d.round))
    deadline: uint256 = block.number + commit_blocks
    taken: DynArray[uint256, MAX_JURY] = []
    for i: uint256 in range(MAX_JURY):
        if i == size:
            break
        picked: uint256 = self._pick(dispute_id, keccak256(abi_encode(seed, i)), taken)
        if picked == 0:
            break
        taken.append(picked)
        self._juries[dispute_id][d.round].append(Juror(node_id=picked, commitment=empty(bytes32), vote=0))
        self._name(dispute_id, picked)
        log JurorDrawn(dispute_id=dispute_id, round=d.round, node_id=picked, slot=i, commit_deadline=deadline, replaced=0)
    assert len(taken) > 0, "no eligible juror in the validator pool"
    self._disputes[dispute_id].whole_pool = len(taken) < size
    self._disputes[dispute_id].phase = PHASE_COMMIT
    self._disputes[dispute_id].commit_deadline = deadline
    self._disputes[dispute_id].replacements = 0


@view
@internal
def _slot_of(dispute_id: uint256, round: uint256, node_id: uint256) -> uint256:
    for i: uint256 in range(MAX_JURY):
        if i == len(self._juries[dispute_id][round]):
            break
        if self._juries[dispute_id][round][i].node_id == node_id:
            return i
    raise "the node is not in this round's jury"


@external
@nonreentrant
def commit_vote(dispute_id: uint256, node_id: uint256, commitment: bytes32):
    """
    @notice A juror (from its attester's address) commits keccak256(abi_encode(dispute_id,
            round, node_id, vote, salt)) by the round's commit deadline.
    """
    # Single fields, not the whole Dispute: a juror's call reads 4 storage slots instead of 25.
    assert self._disputes[dispute_id].status == OPEN and self._disputes[dispute_id].phase == PHASE_COMMIT, (
        "the dispute takes no votes now"
    )
    assert block.number <= self._disputes[dispute_id].commit_deadline, "the commit deadline has passed"
    assert msg.sender == staticcall registry.attester_of(node_id), "caller is not the node's attester"
    round: uint256 = self._disputes[dispute_id].round
    slot: uint256 = self._slot_of(dispute_id, round, node_id)
    assert self._juries[dispute_id][round][slot].commitment == empty(bytes32), "the juror committed already"
    assert commitment != empty(bytes32), "the commitment is empty"
    self._juries[dispute_id][round][slot].commitment = commitment
    log VoteCommitted(dispute_id=dispute_id, round=round, node_id=node_id)


@external
@nonreentrant
def reveal_vote(dispute_id: uint256, node_id: uint256, vote: uint8, salt: bytes32):
    """
    @notice A juror reveals the vote it committed (VALID: the attested state is right;
            INVALID: it is wrong, or its history was still missing from Swarm after the
            availability deadline) by the round's reveal deadline.
    """
    assert self._disputes[dispute_id].status == OPEN and self._disputes[dispute_id].phase == PHASE_REVEAL, (
        "the dispute takes no reveals now"
    )
    assert block.number <= self._disputes[dispute_id].reveal_deadline, "the reveal deadline has passed"
    assert msg.sender == staticcall registry.attester_of(node_id), "caller is not the node's attester"
    round: uint256 = self._disputes[dispute_id].round
    slot: uint256 = self._slot_of(dispute_id, round, node_id)
    juror: Juror = self._juries[dispute_id][round][slot]
    assert juror.commitment != empty(bytes32), "the juror did not commit"
    assert juror.vote == 0, "the juror revealed already"
    assert vote == VALID or vote == INVALID, "a vote is VALID (2) or INVALID (3)"
    assert keccak256(abi_encode(dispute_id, round, node_id, vote, salt)) == juror.commitment, (
        "the vote and salt are not what the juror committed"
    )
    self._juries[dispute_id][round][slot].vote = vote
    log VoteRevealed(dispute_id=dispute_id, round=round, node_id=node_id, vote=vote)


@internal
def _replace_or_reveal(dispute_id: uint256):
    """
    @dev After the commit deadline: jurors that did not commit are replaced by new draws
         (at most MAX_REPLACEMENTS times a round, while the pool has others), seeded by the
         block after the deadline; then reveals open.
    """
    d: Dispute = self._disputes[dispute_id]
    missing: uint256 = 0
    for juror: Juror in self._juries[dispute_id][d.round]:
        if juror.commitment == empty(bytes32):
            missing += 1
    if missing > 0:
        assert block.number > d.commit_deadline, concat("jurors commit until block ", uint2str(d.commit_deadline))
    if missing > 0 and d.replacements < MAX_REPLACEMENTS and not d.whole_pool:
        assert block.number > d.commit_deadline + 1, "the replacements' seed block is not mined yet: call in the next block"
        seed: bytes32 = keccak256(abi_encode(blockhash(d.commit_deadline + 1), dispute_id, d.round, d.replacements))
        deadline: uint256 = block.number + commit_blocks
        taken: DynArray[uint256, MAX_JURY] = self._jury_ids(dispute_id, d.round)
        size: uint256 = len(taken)
        replaced: uint256 = 0
        for i: uint256 in range(MAX_JURY):
            if i == size:
                break
            if self._juries[dispute_id][d.round][i].commitment != empty(bytes32):
                continue
            picked: uint256 = self._pick(dispute_id, keccak256(abi_encode(seed, i)), taken)
            if picked == 0:
                break
            taken.append(picked)
            log JurorDrawn(
                dispute_id=dispute_id, round=d.round, node_id=picked, slot=i, commit_deadline=deadline,
                replaced=self._juries[dispute_id][d.round][i].node_id,
            )
            # A juror that did not commit is not penalised (its host may be down), only replaced.
            if not self._is_juror(dispute_id, self._juries[dispute_id][d.round][i].node_id):
                self._unname(dispute_id, self._juries[dispute_id][d.round][i].node_id)
            self._juries[dispute_id][d.round][i].node_id = picked
            self._name(dispute_id, picked)
            replaced += 1
        if replaced > 0:
            self._disputes[dispute_id].replacements = d.replacements + 1
            self._disputes[dispute_id].commit_deadline = deadline
            return
    self._disputes[dispute_id].phase = PHASE_REVEAL
    self._disputes[dispute_id].reveal_deadline = block.number + reveal_blocks
    log RevealsOpened(dispute_id=dispute_id, round=d.round, reveal_deadline=block.number + reveal_blocks)


@internal
def _tally(dispute_id: uint256):
    d: Dispute = self._disputes[dispute_id]
    valid: uint256 = 0
    invalid: uint256 = 0
    waiting: bool = False
    for juror: Juror in self._juries[dispute_id][d.round]:
        if juror.vote == VALID:
            valid += 1
        elif juror.vote == INVALID:
            invalid += 1
        elif juror.commitment != empty(bytes32):
            waiting = True
    if waiting:
        assert block.number > d.reveal_deadline, concat("jurors reveal until block ", uint2str(d.reveal_deadline))
    jury: uint256 = len(self._juries[dispute_id][d.round])
    outcome: uint8 = 0
    if valid * 3 > jury * 2:
        outcome = VALID
    elif invalid * 3 > jury * 2:
        outcome = INVALID
    last: bool = d.whole_pool or d.round + 1 == MAX_ROUNDS
    log RoundTallied(dispute_id=dispute_id, round=d.round, valid=valid, invalid=invalid, jury=jury, outcome=outcome)
    if outcome != 0 and not last:
        self._disputes[dispute_id].tentative = outcome
        self._disputes[dispute_id].phase = PHASE_APPEAL
        self._disputes[dispute_id].appeal_deadline = block.number + appeal_blocks
    elif outcome != 0:
        self._settle(dispute_id, outcome)
    elif last:
        # The whole pool could not reach 2/3: the majority of the votes cast rules; a tie
        # leaves the state standing (nobody proved it wrong).
        if invalid > valid:
            self._settle(dispute_id, INVALID)
        else:
            self._settle(dispute_id, VALID)
    else:
        self._next_round(dispute_id)


@internal
def _next_round(dispute_id: uint256):
    self._disputes[dispute_id].round += 1
    self._disputes[dispute_id].phase = PHASE_DRAW
    self._disputes[dispute_id].seed_block = block.number + 1
    self._disputes[dispute_id].tentative = 0


@external
@nonreentrant
def advance(dispute_id: uint256):
    """
    @notice Move an open dispute on (anyone): draw the jury once its seed block is mined;
            after the commit deadline (or once every juror committed) replace jurors that
            did not commit or open the reveals; after the reveal deadline (or once every
            committed juror revealed) tally the round; after the appeal deadline settle.
    """
    d: Dispute = self._disputes[dispute_id]
    assert d.status == OPEN, "no open dispute with this id"
    if d.phase == PHASE_DRAW:
        self._draw(dispute_id)
    elif d.phase == PHASE_COMMIT:
        self._replace_or_reveal(dispute_id)
    elif d.phase == PHASE_REVEAL:
        self._tally(dispute_id)
    else:
        assert block.number > d.appeal_deadline, concat("appeals are open until block ", uint2str(d.appeal_deadline))
        self._settle(dispute_id, d.tentative)


@view
@external
def appeal_cost(dispute_id: uint256) -> uint256:
    """
    @notice What appealing the current ruling costs: the bond, doubled for every round so far.
    """
    return bond * 2 ** (self._disputes[dispute_id].round + 1)


@payable
@external
@nonreentrant
def appeal(dispute_id: uint256):
    """
    @notice Anyone may appeal a decisive round's ruling before the appeal deadline, with
            `appeal_cost` wei: a jury twice as large (plus one) rules again. The bond comes
            back if the final ruling is the other one; otherwise it is burnt.
    """
    d: Dispute = self._disputes[dispute_id]
    assert d.status == OPEN and d.phase == PHASE_APPEAL, "the dispute has no ruling to appeal"
    assert block.number <= d.appeal_deadline, "the appeal deadline has passed"
    cost: uint256 = bond * 2 ** (d.round + 1)
    assert msg.value >= cost, concat("an appeal needs ", uint2str(cost), " wei")
    side: uint8 = INVALID
    if d.tentative == INVALID:
        side = VALID
    self._appeals[dispute_id].append(Appeal(appellant=msg.sender, amount=msg.value, side=side))
    log Appealed(dispute_id=dispute_id, round=d.round, appellant=msg.sender, amount=msg.value, side=side)
    self._next_round(dispute_id)


# ---------------------------------------------------------------------------
# the ruling


@internal
def _take(node_id: uint256, bps: uint256, reason: String[128]) -> uint256:
    """
    @dev Slash `bps` of the node's deposit (whatever is left of it); 0 if nothing is.
    """
    node: Registry.Node = staticcall registry.node(node_id)
    amount: uint256 = node.deposit * bps // 10000
    if amount == 0 or node.status == 0 or node.status == 4:
        return 0
    return extcall registry.slash(node_id, amount, reason)


@internal
def _settle(dispute_id: uint256, ruling: uint8):
    d: Dispute = self._disputes[dispute_id]
    self._disputes[dispute_id].status = ruling
    self._disputes[dispute_id].phase = PHASE_DONE
    slashed: uint256 = 0
    frozen: bool = False
    if ruling == INVALID:
        for node_id: uint256 in self._accused[dispute_id]:
            slashed += self._take(node_id, slash_bps, "dispute: attested an invalid state")
        if d.agreed:
            # The cluster's own state: the validators that endorsed its checkpoint re-executed
            # the lie and said it was right; nothing above the base is valid any more.
            slots: DynArray[Validation.Slot, MAX_DRAWN] = staticcall validation.drawn(
                d.cluster_id, self._covering(d.cluster_id, d.height)
            )
            for slot: Validation.Slot in slots:
                if slot.endorsed:
                    slashed += self._take(slot.node_id, slash_bps, "dispute: endorsed an invalid state")
            extcall validation.freeze(d.cluster_id, d.base)
            frozen = True
        self.claimable[d.disputer_address] += d.bond
    elif d.member_disputer:
        self._take(d.disputer, member_penalty_bps, "dispute: disputed a valid state")
    else:
        self.total_burned += d.bond
    for round: uint256 in range(MAX_ROUNDS):
        if round > d.round:
            break
        for juror: Juror in self._juries[dispute_id][round]:
            if (juror.commitment != empty(bytes32) and juror.vote == 0) or (juror.vote != 0 and juror.vote != ruling):
                self._take(juror.node_id, juror_penalty_bps, "dispute: a juror did not reveal, or voted against the ruling")
    for a: Appeal in self._appeals[dispute_id]:
        if a.side == ruling:
            self.claimable[a.appellant] += a.amount
        else:
            self.total_burned += a.amount
    # Every wei slashed here comes to this contract (the Registry's beneficiary): at most
    # bounty_bps of the accused's loss goes to the disputer, the rest stays locked for good.
    swept: uint256 = 0
    if staticcall registry.beneficiary() == self and staticcall registry.pending_slashed() > 0:
        swept = extcall registry.sweep_slashed()
    bounty: uint256 = min(slashed * bounty_bps // 10000, swept)
    self.claimable[d.disputer_address] += bounty
    self.total_burned += swept - bounty
    self._disputes[dispute_id].slashed = slashed
    self._disputes[dispute_id].bounty = bounty
    self._release(dispute_id)
    log DisputeSettled(
        dispute_id=dispute_id, cluster_id=d.cluster_id, height=d.height, status=ruling, slashed=slashed,
        bounty=bounty, frozen=frozen,
    )


@internal
def _release(dispute_id: uint256):
    """
    @dev The ruling is carried out: the nodes it named may withdraw again (as far as this
         dispute is concerned).
    """
    d: Dispute = self._disputes[dispute_id]
    self._unname(dispute_id, d.disputer)
    for node_id: uint256 in self._accused[dispute_id]:
        self._unname(dispute_id, node_id)
    slots: DynArray[Validation.Slot, MAX_DRAWN] = staticcall validation.drawn(d.cluster_id, self._covering(d.cluster_id, d.height))
    for slot: Validation.Slot in slots:
        self._unname(dispute_id, slot.node_id)
    for round: uint256 in range(MAX_ROUNDS):
        if round > d.round:
            break
        for juror: Juror in self._juries[dispute_id][round]:
            self._unname(dispute_id, juror.node_id)


@internal
def _unname(dispute_id: uint256, node_id: uint256):
    if self._named[dispute_id][node_id]:
        self._named[dispute_id][node_id] = False
        self.holds[node_id] -= 1


@external
@nonreentrant
def claim() -> uint256:
    """
    @notice Pay the caller its returned bonds and bounties.
    """
    amount: uint256 = self.claimable[msg.sender]
    assert amount > 0, "nothing to claim"
    self.claimable[msg.sender] = 0
    log Claimed(account=msg.sender, amount=amount)
    raw_call(msg.sender, b"", value=amount)
    return amount


# ---------------------------------------------------------------------------
# views


@view
@external
def dispute(dispute_id: uint256) -> Dispute:
    """
    @notice The dispute (cluster_id 0: no such dispute).
    """
    return self._disputes[dispute_id]


@view
@external
def accused(dispute_id: uint256) -> DynArray[uint256, MAX_SIGNERS]:
    return self._accused[dispute_id]


@view
@external
def jury(dispute_id: uint256, round: uint256) -> DynArray[Juror, MAX_JURY]:
    return self._juries[dispute_id][round]


@view
@external
def appeals(dispute_id: uint256) -> DynArray[Appeal, MAX_ROUNDS]:
    return self._appeals[dispute_id]
