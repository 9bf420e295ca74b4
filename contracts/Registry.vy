# pragma version 0.4.3
# pragma evm-version cancun
"""
@title Real-time clusters: node registry, security deposits and cluster membership
@notice A node is an operator address with a CometBFT validator key (ed25519 public
        key) and a deposit of at least `min_deposit` wei. An active node may ask to join
        one cluster (a backend named by its code reference in Swarm and its code hash);
        the cluster admits it when its owner approves, or more than 2/3 of its members'
        operators do, at most one node per cluster per Ethereum block. Leaving, or being ejected by a slash below min_deposit, starts a cooling-off
        period of `cooling_off_blocks` Ethereum blocks during which the node can still
        be slashed; after it the operator withdraws what is left of the deposit, once.
        Every change emits an event; a follower that replays NodeJoined / NodeLeft of a
        cluster up to block B in log order has the membership at block B, and
        `members_at` / `is_member_at` answer the same question from storage.
        See contracts/README.md for the rules, the API and gas figures.
"""

# ---------------------------------------------------------------------------
# constants

# Node status (the `status` field of Node).
STATUS_NONE: public(constant(uint8)) = 0  # no such node
STATUS_ACTIVE: public(constant(uint8)) = 1  # deposit >= min_deposit, may be a member
STATUS_LEAVING: public(constant(uint8)) = 2  # leave requested; cooling-off, still slashable
STATUS_EJECTED: public(constant(uint8)) = 3  # slashed below min_deposit; cooling-off, still slashable
STATUS_WITHDRAWN: public(constant(uint8)) = 4  # deposit paid out; final

# Why a membership ended (the `reason` of NodeLeft).
LEFT_BY_LEAVE: public(constant(uint8)) = 1  # the operator requested to leave
LEFT_BY_EJECTION: public(constant(uint8)) = 2  # slashed below min_deposit

# Why a join request ended without admission (the `reason` of JoinCancelled).
JOIN_CANCELLED_BY_OPERATOR: public(constant(uint8)) = 1  # the node's operator withdrew it
JOIN_REFUSED_BY_OWNER: public(constant(uint8)) = 2  # the cluster's owner refused it
JOIN_ENDED_BY_LEAVING: public(constant(uint8)) = 3  # the node left or was ejected while it waited

MAX_MEMBERS: public(constant(uint256)) = 16  # most members a cluster can have at once
MAX_CLUSTER_HISTORY: public(constant(uint256)) = 1024  # most nodes that can ever join one cluster
MAX_REASON: constant(uint256) = 128
# What an attester key signs to show it is the node's (rtc.protocol.attestation.attester_proof)
ATTESTER_TYPE: constant(bytes32) = keccak256("AttesterOf(address registry,uint256 chainId,uint256 nodeId)")
MAX_COOLING_OFF: constant(uint256) = 2**64

# ---------------------------------------------------------------------------
# types

struct Node:
    operator: address
    validator_key: bytes32  # ed25519 public key of the node's CometBFT validator
    deposit: uint256  # wei held for this node
    status: uint8  # STATUS_*
    cluster_id: uint256  # the cluster the node joined (kept after it left); 0 = never joined
    registered_block: uint256
    member_since: uint256  # block of joining (0 = never joined)
    member_until: uint256  # block the membership ended (0 = still a member, or never joined)
    leave_block: uint256  # block of request_leave or ejection (0 = still active)
    withdrawable_block: uint256  # first block at which withdraw succeeds (0 = still active)

struct Cluster:
    creator: address
    code_hash: bytes32  # SHA-256 of the backend component
    code_reference: Bytes[64]  # Swarm reference of the component (32 bytes, or 64 if encrypted)
    max_members: uint256
    created_block: uint256
    members: DynArray[uint256, MAX_MEMBERS]  # current members' node ids, in joining order
    owner: address  # may admit nodes alone; the creator at first; empty = only the members admit

struct JoinRequest:
    cluster_id: uint256  # the cluster asked (0 = no pending request)
    requested_block: uint256
    approvals: DynArray[uint256, MAX_MEMBERS]  # members (node ids) whose operators approved

# ---------------------------------------------------------------------------
# events

event NodeRegistered:
    node_id: indexed(uint256)
    operator: indexed(address)
    validator_key: indexed(bytes32)
    deposit: uint256

event DepositAdded:
    node_id: indexed(uint256)
    operator: indexed(address)
    amount: uint256
    deposit: uint256  # the new total

event NodeEjected:
    node_id: indexed(uint256)
    operator: indexed(address)
    deposit: uint256  # what is left, below min_deposit
    leave_block: uint256
    withdrawable_block: uint256

event LeaveRequested:
    node_id: indexed(uint256)
    operator: indexed(address)
    leave_block: uint256
    withdrawable_block: uint256

event Withdrawn:
    node_id: indexed(uint256)
    operator: indexed(address)
    amount: uint256

event Slashed:
    node_id: indexed(uint256)
    operator: indexed(address)
    slasher: indexed(address)
    amount: uint256  # what was taken (at most the deposit)
    deposit: uint256  # what is left
    burned: bool  # true: locked in this contract forever; false: owed to the beneficiary
    reason: String[MAX_REASON]

event SlashedFundsSwept:
    beneficiary: indexed(address)
    amount: uint256

event ClusterCreated:
    cluster_id: indexed(uint256)
    creator: indexed(address)
    code_hash: indexed(bytes32)
    code_reference: Bytes[64]
    max_members: uint256

event NodeJoined:
    cluster_id: indexed(uint256)
    node_id: indexed(uint256)
    validator_key: indexed(bytes32)

event NodeLeft:
    cluster_id: indexed(uint256)
    node_id: indexed(uint256)
    validator_key: indexed(bytes32)
    reason: uint8  # LEFT_*

event JoinRequested:
    cluster_id: indexed(uint256)
    node_id: indexed(uint256)
    operator: indexed(address)
    validator_key: bytes32

event JoinApproved:
    cluster_id: indexed(uint256)
    node_id: indexed(uint256)
    approver: indexed(address)
    by_owner: bool  # true: the cluster's owner admitted the node alone
    approvals: uint256  # members' approvals that count now (this one included)
    needed: uint256  # members' approvals that admit the node: more than 2/3 of the current members

event JoinCancelled:
    cluster_id: indexed(uint256)
    node_id: indexed(uint256)
    by: indexed(address)
    reason: uint8  # JOIN_*

event ClusterOwnershipTransferred:
    cluster_id: indexed(uint256)
    previous_owner: indexed(address)
    new_owner: indexed(address)

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)

event SlasherChanged:
    previous_slasher: indexed(address)
    new_slasher: indexed(address)

event BeneficiaryChanged:
    previous_beneficiary: indexed(address)
    new_beneficiary: indexed(address)

event AttesterSet:
    node_id: indexed(uint256)
    attester: indexed(address)

event ValidationSet:
    validation: indexed(address)

# The Validation contract, as the Registry asks it whether a leaving member's attestations
# have been re-checked (declared here: Validation.vy imports this contract).
interface ValidationGate:
    def released(node_id: uint256, cluster_id: uint256) -> bool: view

# ---------------------------------------------------------------------------
# storage

min_deposit: public(immutable(uint256))
cooling_off_blocks: public(immutable(uint256))

owner: public(address)
slasher: public(address)  # the only address that may slash (the dispute contract); empty = nobody
beneficiary: public(address)  # receives slashed funds; empty = slashed funds are burned
# Holds a leaving member's deposit until its attestations are validated (see withdraw);
# set once by the owner; empty = the cooling-off period alone.
validation: public(address)

node_count: public(uint256)  # node ids are 1..node_count
cluster_count: public(uint256)  # cluster ids are 1..cluster_count
node_of_operator: public(HashMap[address, uint256])  # operator -> its node not yet withdrawn (0 = none)
node_of_key: public(HashMap[bytes32, uint256])  # validator key -> node (keys are never reused)
# The secp256k1 key (as its address) a node signs attestations of cluster state with (EIP-712,
# checked by ecrecover in the Validation contract): set once by the operator, never reused.
attester_of: public(HashMap[uint256, address])  # node -> its attester (empty = none yet)
node_of_attester: public(HashMap[address, uint256])  # attester -> its node (0 = none)
attester_since: public(HashMap[uint256, uint256])  # node -> the block its attester was set in

total_deposits: public(uint256)  # sum of all nodes' deposits
pending_slashed: public(uint256)  # slashed wei owed to the beneficiary (see sweep_slashed)
total_burned: public(uint256)  # slashed wei locked here forever

_nodes: HashMap[uint256, Node]
_clusters: HashMap[uint256, Cluster]
_history: HashMap[uint256, DynArray[uint256, MAX_CLUSTER_HISTORY]]  # every node that ever joined, in order
_requests: HashMap[uint256, JoinRequest]  # node -> its pending join request

# ---------------------------------------------------------------------------
# construction and administration


@deploy
def __init__(_min_deposit: uint256, _cooling_off_blocks: uint256):
    """
    @param _min_deposit smallest deposit of an active node, in wei (> 0)
    @param _cooling_off_blocks Ethereum blocks between request_leave and withdraw (> 0)
    """
    assert _min_deposit > 0, "minimum deposit is zero"
    assert _cooling_off_blocks > 0, "cooling-off period is zero"
    assert _cooling_off_blocks <= MAX_COOLING_OFF, "cooling-off period is too long"
    min_deposit = _min_deposit
    cooling_off_blocks = _cooling_off_blocks
    self.owner = msg.sender
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)


@internal
def _only_owner():
    assert msg.sender == self.owner, "caller is not the owner"


@external
def transfer_ownership(new_owner: address):
    self._only_owner()
    assert new_owner != empty(address), "new owner is the zero address"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=new_owner)
    self.owner = new_owner


@external
def set_slasher(new_slasher: address):
    """
    @notice The owner names the contract (or account) allowed to slash; empty disables slashing.
    """
    self._only_owner()
    log SlasherChanged(previous_slasher=self.slasher, new_slasher=new_slasher)
    self.slasher = new_slasher


@external
def set_validation(new_validation: address):
    """
    @notice The owner names the Validation contract, once: from then on a member that leaves
            gets its deposit back only when every checkpoint it attested is validated and
            the dispute window has passed (Validation.released), so that a lie it signed
            can still cost it. Once, so that nobody can later free deposits from that rule.
    """
    self._only_owner()
    assert new_validation != empty(address), "validation is the zero address"
    assert self.validation == empty(address), "the validation contract is already set"
    self.validation = new_validation
    log ValidationSet(validation=new_validation)


@external
def set_beneficiary(new_beneficiary: address):
    """
    @notice The owner names who receives slashed funds from now on; empty burns them.
    """
    self._only_owner()
    log BeneficiaryChanged(previous_beneficiary=self.beneficiary, new_beneficiary=new_beneficiary)
    self.beneficiary = new_beneficiary


# ---------------------------------------------------------------------------
# nodes


@internal
def _only_operator(node_id: uint256):
    operator: address = self._nodes[node_id].operator
    assert operator != empty(address), "no such node"
    assert operator == msg.sender, "caller is not the node's operator"


@internal
def _end_membership(node_id: uint256, reason: uint8):
    """
    @dev Ends the node's current membership, if it has one.
    """
    cluster_id: uint256 = self._nodes[node_id].cluster_id
    if cluster_id == 0 or self._nodes[node_id].member_until != 0:
        return
    self._nodes[node_id].member_until = block.number
    old: DynArray[uint256, MAX_MEMBERS] = self._clusters[cluster_id].members
    kept: DynArray[uint256, MAX_MEMBERS] = []
    for member: uint256 in old:
        if member != node_id:
            kept.append(member)
    self._clusters[cluster_id].members = kept
    log NodeLeft(
        cluster_id=cluster_id, node_id=node_id, validator_key=self._nodes[node_id].validator_key, reason=reason
    )


@external
@payable
@nonreentrant
def register(validator_key: bytes32) -> uint256:
    """
    @notice Register the caller as the operator of a new node with `msg.value` as its deposit.
    @param validator_key the node's CometBFT ed25519 public key (32 bytes); never reusable
    @return the new node id
    """
    assert validator_key != empty(bytes32), "validator key is zero"
    assert msg.value >= min_deposit, "deposit below minimum"
    assert self.node_of_operator[msg.sender] == 0, "operator already has a node"
    assert self.node_of_key[validator_key] == 0, "validator key already registered"
    node_id: uint256 = self.node_count + 1
    self.node_count = node_id
    self.node_of_operator[msg.sender] = node_id
    self.node_of_key[validator_key] = node_id
    self._nodes[node_id].operator = msg.sender
    self._nodes[node_id].validator_key = validator_key
    self._nodes[node_id].deposit = msg.value
    self._nodes[node_id].status = STATUS_ACTIVE
    self._nodes[node_id].registered_block = block.number
    self.total_deposits += msg.value
    log NodeRegistered(node_id=node_id, operator=msg.sender, validator_key=validator_key, deposit=msg.value)
    return node_id


@external
@nonreentrant
def set_attester(node_id: uint256, attester: address, v: uint8, r: uint256, s: uint256):
    """
    @notice Name the key (its Ethereum address) the node signs attestations of its cluster's
            state with. Once per node: an attestation must name one signer for good, so a key
            is never changed or reused (a compromised key: leave, and register a new node).
    @param attester the address of the node's secp256k1 attestation key (not the operator's)
    @dev v, r and s are that key's signature over keccak256(abi_encode(ATTESTER_TYPE, this
         registry, chain id, node_id)): without it, anyone could claim another node's key
         first and make that node's attestations count for their own
    """
    self._only_operator(node_id)
    self._check_active(self._nodes[node_id].status)
    assert attester != empty(address), "attester is empty"
    assert self.attester_of[node_id] == empty(address), "the node already has an attester"
    assert self.node_of_attester[attester] == 0, "attester already used by a node"
    proof: bytes32 = keccak256(abi_encode(ATTESTER_TYPE, self, chain.id, node_id))
    assert ecrecover(proof, v, r, s) == attester, "the attester key did not sign this node's id"
    self.attester_of[node_id] = attester
    self.node_of_attester[attester] = node_id
    self.attester_since[node_id] = block.number
    log AttesterSet(node_id=node_id, attester=attester)


@internal
def _check_active(status: uint8):
    assert status != STATUS_LEAVING, "node is leaving"
    assert status != STATUS_EJECTED, "node was ejected"
    assert status != STATUS_WITHDRAWN, "node has withdrawn"


@internal
def _start_cooling_off(node_id: uint256, status: uint8) -> uint256:
    withdrawable: uint256 = block.number + cooling_off_blocks
    self._nodes[node_id].status = status
    self._nodes[node_id].leave_block = block.number
    self._nodes[node_id].withdrawable_block = withdrawable
    requested: uint256 = self._requests[node_id].cluster_id
    if requested != 0:
        self._requests[node_id] = empty(JoinRequest)
        log JoinCancelled(cluster_id=requested, node_id=node_id, by=msg.sender, reason=JOIN_ENDED_BY_LEAVING)
    return withdrawable


@external
@payable
@nonreentrant
def top_up(node_id: uint256):
    """
    @notice Add `msg.value` to an active node's deposit (operator only).
    """
    self._only_operator(node_id)
    self._check_active(self._nodes[node_id].status)
    assert msg.value > 0, "top-up amount is zero"
    deposit: uint256 = self._nodes[node_id].deposit + msg.value
    self._nodes[node_id].deposit = deposit
    self.total_deposits += msg.value
    log DepositAdded(node_id=node_id, operator=msg.sender, amount=msg.value, deposit=deposit)


@external
@nonreentrant
def request_leave(node_id: uint256) -> uint256:
    """
    @notice Start leaving (operator only, active nodes): the node stops being a member at
            once and its deposit can be withdrawn from block `block.number + cooling_off_blocks` on.
    @return the first block at which withdraw succeeds
    """
    self._only_operator(node_id)
    self._check_active(self._nodes[node_id].status)
    withdrawable: uint256 = self._start_cooling_off(node_id, STATUS_LEAVING)
    self._end_membership(node_id, LEFT_BY_LEAVE)
    log LeaveRequested(node_id=node_id, operator=msg.sender, leave_block=block.number, withdrawable_block=withdrawable)
    return withdrawable


@external
@nonreentrant
def withdraw(node_id: uint256) -> uint256:
    """
    @notice Pay what is left of the deposit to the operator, once, after the cooling-off
            period of a leaving or ejected node (operator only), and, for a node that was a
            cluster's member while a Validation contract is set, once that contract releases
            it. Frees the operator to register a new node.
    @return the amount paid
    """
    self._only_operator(node_id)
    status: uint8 = self._nodes[node_id].status
    assert status != STATUS_WITHDRAWN, "node has already withdrawn"
    assert status == STATUS_LEAVING or status == STATUS_EJECTED, "node has not requested to leave"
    withdrawable: uint256 = self._nodes[node_id].withdrawable_block
    assert block.number >= withdrawable, concat(
        "cooling-off not over: withdrawable at block ", uint2str(withdrawable)
    )
    # Asked for every node, members or not: a batch validator or a juror named in an open
    # dispute is held too (Validation.released).
    cluster_id: uint256 = self._nodes[node_id].cluster_id
    if self.validation != empty(address):
        assert staticcall ValidationGate(self.validation).released(node_id, cluster_id), (
            "the checkpoints this node attested are not validated, their dispute window is still open, or a dispute names it"
        )
    # effects
    amount: uint256 = self._nodes[node_id].deposit
    self._nodes[node_id].deposit = 0
    self._nodes[node_id].status = STATUS_WITHDRAWN
    self.node_of_operator[msg.sender] = 0
    self.total_deposits -= amount
    log Withdrawn(node_id=node_id, operator=msg.sender, amount=amount)
    # interaction
    if amount > 0:
        raw_call(msg.sender, b"", value=amount)
    return amount


# ---------------------------------------------------------------------------
# slashing


@external
@nonreentrant
def slash(node_id: uint256, amount: uint256, reason: String[MAX_REASON]) -> uint256:
    """
    @notice Take up to `amount` wei from a node's deposit (slasher only). Works on active,
            leaving and ejected nodes (the cooling-off period exists for this). An active
            node left below min_deposit is ejected: it leaves its cluster and starts the
            cooling-off period as if it had requested to leave. The funds go to the
            beneficiary (see sweep_slashed) or, with none set, are burned.
    @return the amount actually taken (min(amount, deposit))
    """
    # (an empty slasher disables slashing, even for a simulated call from the zero address)
    assert msg.sender == self.slasher and msg.sender != empty(address), "caller is not the slasher"
    status: uint8 = self._nodes[node_id].status
    assert status != STATUS_NONE, "no such node"
    assert status != STATUS_WITHDRAWN, "node has withdrawn"
    assert amount > 0, "slash amount is zero"
    deposit: uint256 = self._nodes[node_id].deposit
    assert deposit > 0, "node has no deposit left"
    taken: uint256 = min(amount, deposit)
    deposit -= taken
    self._nodes[node_id].deposit = deposit
    self.total_deposits -= taken
    burned: bool = self.beneficiary == empty(address)
    if burned:
        self.total_burned += taken
    else:
        self.pending_slashed += taken
    log Slashed(
        node_id=node_id,
        operator=self._nodes[node_id].operator,
        slasher=msg.sender,
        amount=taken,
        deposit=deposit,
        burned=burned,
        reason=reason,
    )
    if status == STATUS_ACTIVE and deposit < min_deposit:
        withdrawable: uint256 = self._start_cooling_off(node_id, STATUS_EJECTED)
        self._end_membership(node_id, LEFT_BY_EJECTION)
        log NodeEjected(
            node_id=node_id,
            operator=self._nodes[node_id].operator,
            deposit=deposit,
            leave_block=block.number,
            withdrawable_block=withdrawable,
        )
    return taken


@external
@nonreentrant
def sweep_slashed() -> uint256:
    """
    @notice Send the slashed funds owed (pending_slashed) to the current beneficiary.
            Anyone may call it; the destination is fixed by the owner.
    @return the amount sent
    """
    to: address = self.beneficiary
    assert to != empty(address), "no beneficiary set"
    amount: uint256 = self.pending_slashed
    assert amount > 0, "no slashed funds to sweep"
    self.pending_slashed = 0
    log SlashedFundsSwept(beneficiary=to, amount=amount)
    raw_call(to, b"", value=amount)
    return amount


# ---------------------------------------------------------------------------
# clusters


@external
@nonreentrant
def create_cluster(code_reference: Bytes[64], code_hash: bytes32, max_members: uint256) -> uint256:
    """
    @notice Anyone may create a cluster for a backend; it means nothing until nodes join.
            The creator becomes the cluster's owner, who admits nodes (see approve_join).
    @param code_reference Swarm reference of the backend component (32 or 64 bytes)
    @param code_hash SHA-256 of the backend component
    @param max_members most members at once, 1..MAX_MEMBERS
    @return the new cluster id
    """
    assert len(code_reference) == 32 or len(code_reference) == 64, "code reference must be 32 or 64 bytes"
    assert code_hash != empty(bytes32), "code hash is zero"
    assert max_members >= 1 and max_members <= MAX_MEMBERS, "max members must be 1 to 16"
    cluster_id: uint256 = self.cluster_count + 1
    self.cluster_count = cluster_id
    self._clusters[cluster_id].creator = msg.sender
    self._clusters[cluster_id].code_hash = code_hash
    self._clusters[cluster_id].code_reference = code_reference
    self._clusters[cluster_id].max_members = max_members
    self._clusters[cluster_id].created_block = block.number
    self._clusters[cluster_id].owner = msg.sender
    log ClusterCreated(
        cluster_id=cluster_id,
        creator=msg.sender,
        code_hash=code_hash,
        code_reference=code_reference,
        max_members=max_members,
    )
    return cluster_id


@external
@nonreentrant
def transfer_cluster_ownership(cluster_id: uint256, new_owner: address):
    """
    @notice The cluster's owner hands its right to admit nodes to `new_owner`; the empty
            address renounces it, and from then on only the members admit nodes.
    """
    assert cluster_id != 0 and cluster_id <= self.cluster_count, "no such cluster"
    assert msg.sender == self._clusters[cluster_id].owner, "caller is not the cluster's owner"
    log ClusterOwnershipTransferred(
        cluster_id=cluster_id, previous_owner=msg.sender, new_owner=new_owner
    )
    self._clusters[cluster_id].owner = new_owner


@internal
@view
def _is_member(node_id: uint256, cluster_id: uint256) -> bool:
    return (
        cluster_id != 0
        and self._nodes[node_id].cluster_id == cluster_id
        and self._nodes[node_id].member_until == 0
    )


@internal
@view
def _approvals_needed(cluster_id: uint256) -> uint256:
    return len(self._clusters[cluster_id].members) * 2 // 3 + 1


@internal
@view
def _counted_approvals(node_id: uint256, cluster_id: uint256) -> DynArray[uint256, MAX_MEMBERS]:
    """
    @dev The approvals of a request whose approvers are still members of the cluster.
    """
    counted: DynArray[uint256, MAX_MEMBERS] = []
    for approver: uint256 in self._requests[node_id].approvals:
        if self._is_member(approver, cluster_id):
            counted.append(approver)
    return counted


@external
@nonreentrant
def request_join(node_id: uint256, cluster_id: uint256):
    """
    @notice An active node asks to join a cluster (operator only). It becomes a member
            once the cluster's owner, or more than 2/3 of the members' operators,
            approve (approve_join). A node joins at most one cluster in its life and has
            at most one pending request; cancel_join withdraws it.
    """
    self._only_operator(node_id)
    assert self._nodes[node_id].status == STATUS_ACTIVE, "node is not active"
    assert self._nodes[node_id].cluster_id == 0, "node already joined a cluster"
    assert cluster_id != 0 and cluster_id <= self.cluster_count, "no such cluster"
    assert self._requests[node_id].cluster_id == 0, "node already requested to join a cluster"
    assert len(self._clusters[cluster_id].members) < self._clusters[cluster_id].max_members, "cluster is full"
    self._requests[node_id].cluster_id = cluster_id
    self._requests[node_id].requested_block = block.number
    log JoinRequested(
        cluster_id=cluster_id,
        node_id=node_id,
        operator=msg.sender,
        validator_key=self._nodes[node_id].validator_key,
    )


@external
@nonreentrant
def cancel_join(node_id: uint256):
    """
    @notice End a pending join request: its node's operator withdraws it, or the cluster's
            owner refuses it. Approvals given so far are dropped.
    """
    cluster_id: uint256 = self._requests[node_id].cluster_id
    assert cluster_id != 0, "no pending join request for this node"
    reason: uint8 = JOIN_CANCELLED_BY_OPERATOR
    if msg.sender != self._nodes[node_id].operator:
        assert msg.sender == self._clusters[cluster_id].owner, "caller is neither the node's operator nor the cluster's owner"
        reason = JOIN_REFUSED_BY_OWNER
    self._requests[node_id] = empty(JoinRequest)
    log JoinCancelled(cluster_id=cluster_id, node_id=node_id, by=msg.sender, reason=reason)


@internal
def _admit(node_id: uint256, cluster_id: uint256):
    assert self._nodes[node_id].status == STATUS_ACTIVE, "node is not active"
    assert len(self._clusters[cluster_id].members) < self._clusters[cluster_id].max_members, "cluster is full"
    joined: uint256 = len(self._history[cluster_id])
    assert joined < MAX_CLUSTER_HISTORY, "cluster history is full"
    # One admission per cluster per Ethereum block: the validator set takes in one new
    # member per sync, and this guarantees a block with exactly one more exists to sync to.
    if joined > 0:
        last: uint256 = self._history[cluster_id][joined - 1]
        assert self._nodes[last].member_since < block.number, (
            "the cluster admitted a node in this Ethereum block already: approve again in the next block"
        )
    self._requests[node_id] = empty(JoinRequest)
    self._clusters[cluster_id].members.append(node_id)
    self._history[cluster_id].append(node_id)
    self._nodes[node_id].cluster_id = cluster_id
    self._nodes[node_id].member_since = block.number
    log NodeJoined(cluster_id=cluster_id, node_id=node_id, validator_key=self._nodes[node_id].validator_key)


@external
@nonreentrant
def approve_join(node_id: uint256) -> bool:
    """
    @notice Approve a node's pending join request. The cluster's owner admits it at once;
            the operator of a current member adds its member's approval, and the approval
            that makes more than 2/3 of the current members admits it (approvals of nodes
            that have since left do not count; a member that approved may call again to
            complete an admission that enough approvals now allow). At most one node is
            admitted per cluster per Ethereum block.
    @return true if the node is now a member
    """
    cluster_id: uint256 = self._requests[node_id].cluster_id
    assert cluster_id != 0, "no pending join request for this node"
    needed: uint256 = self._approvals_needed(cluster_id)
    approvals: DynArray[uint256, MAX_MEMBERS] = self._counted_approvals(node_id, cluster_id)
    if msg.sender == self._clusters[cluster_id].owner:
        log JoinApproved(
            cluster_id=cluster_id,
            node_id=node_id,
            approver=msg.sender,
            by_owner=True,
            approvals=len(approvals),
            needed=needed,
        )
        self._admit(node_id, cluster_id)
        return True
    voter: uint256 = self.node_of_operator[msg.sender]
    assert voter != 0 and self._is_member(voter, cluster_id), (
        "caller is neither the cluster's owner nor the operator of one of its members"
    )
    if voter in approvals:
        assert len(approvals) >= needed, concat(
            "already approved (", uint2str(len(approvals)), " of the ", uint2str(needed), " approvals needed so far)"
        )
    else:
        approvals.append(voter)
    log JoinApproved(
        cluster_id=cluster_id,
        node_id=node_id,
        approver=msg.sender,
        by_owner=False,
        approvals=len(approvals),
        needed=needed,
    )
    if len(approvals) >= needed:
        self._admit(node_id, cluster_id)
        return True
    self._requests[node_id].approvals = approvals
    return False


# ---------------------------------------------------------------------------
# views


@view
@external
def node(node_id: uint256) -> Node:
    """
    @notice A node's full state; all zeros (status STATUS_NONE) for an unknown id.
    """
    return self._nodes[node_id]


@view
@external
def nodes_by_keys(
    keys: DynArray[bytes32, MAX_MEMBERS]
) -> (DynArray[uint256, MAX_MEMBERS], DynArray[Node, MAX_MEMBERS]):
    """
    @notice Node ids and states for up to 16 validator keys in one call (id 0 and an
            all-zero Node for an unknown key), e.g. the signers of a CometBFT commit.
    """
    ids: DynArray[uint256, MAX_MEMBERS] = []
    found: DynArray[Node, MAX_MEMBERS] = []
    for key: bytes32 in keys:
        node_id: uint256 = self.node_of_key[key]
        ids.append(node_id)
        found.append(self._nodes[node_id])
    return ids, found


@view
@external
def standing(node_id: uint256) -> (uint8, uint256):
    """
    @notice A node's status and the cluster it joined (0: none), in two storage reads: what
            the Validation contract needs to decide whether a node may validate a cluster.
    """
    return self._nodes[node_id].status, self._nodes[node_id].cluster_id


@view
@external
def is_active_member(node_id: uint256, cluster_id: uint256) -> bool:
    """
    @notice True if the node is a member of the cluster now (which implies an active node
            with its deposit at or above min_deposit).
    """
    return self._is_member(node_id, cluster_id)


@view
@external
def join_request(node_id: uint256) -> JoinRequest:
    """
    @notice The node's pending join request (cluster_id 0: none), with the approvals of
            those approvers that are still members of the cluster.
    """
    request: JoinRequest = self._requests[node_id]
    if request.cluster_id != 0:
        request.approvals = self._counted_approvals(node_id, request.cluster_id)
    return request


@view
@external
def approvals_needed(cluster_id: uint256) -> uint256:
    """
    @notice How many members' approvals admit a node now: more than 2/3 of the current members.
    """
    return self._approvals_needed(cluster_id)


@internal
@view
def _member_at(node_id: uint256, cluster_id: uint256, block_number: uint256) -> bool:
    if cluster_id == 0 or self._nodes[node_id].cluster_id != cluster_id:
        return False
    if self._nodes[node_id].member_since > block_number:
        return False
    until: uint256 = self._nodes[node_id].member_until
    return until == 0 or block_number < until


@view
@external
def is_member_at(node_id: uint256, cluster_id: uint256, block_number: uint256) -> bool:
    """
    @notice True if the node was a member of the cluster in the state after block
            `block_number` (joined in or before it, and not left in or before it).
    """
    assert block_number <= block.number, "block is in the future"
    return self._member_at(node_id, cluster_id, block_number)


@view
@external
def cluster(cluster_id: uint256) -> Cluster:
    """
    @notice A cluster's full state, with its current members; all zeros for an unknown id.
    """
    return self._clusters[cluster_id]


@view
@external
def members(cluster_id: uint256) -> DynArray[uint256, MAX_MEMBERS]:
    """
    @notice The cluster's current members' node ids, in joining order.
    """
    return self._clusters[cluster_id].members


@view
@external
def member_count(cluster_id: uint256) -> uint256:
    """
    @notice How many members the cluster has now (one storage read: for other contracts).
    """
    return len(self._clusters[cluster_id].members)


@view
@external
def code_hash(cluster_id: uint256) -> bytes32:
    """
    @notice The cluster's code hash (zero for an unknown cluster; one storage read).
    """
    return self._clusters[cluster_id].code_hash


@view
@external
def member_keys(cluster_id: uint256) -> DynArray[bytes32, MAX_MEMBERS]:
    """
    @notice The validator keys of the cluster's current members, in joining order.
    """
    keys: DynArray[bytes32, MAX_MEMBERS] = []
    for node_id: uint256 in self._clusters[cluster_id].members:
        keys.append(self._nodes[node_id].validator_key)
    return keys


@view
@external
def cluster_history(cluster_id: uint256) -> DynArray[uint256, MAX_CLUSTER_HISTORY]:
    """
    @notice Every node that ever joined the cluster, in joining order.
    """
    return self._history[cluster_id]


@internal
@view
def _members_at(cluster_id: uint256, block_number: uint256) -> DynArray[uint256, MAX_MEMBERS]:
    found: DynArray[uint256, MAX_MEMBERS] = []
    for node_id: uint256 in self._history[cluster_id]:
        if self._member_at(node_id, cluster_id, block_number):
            found.append(node_id)
    return found


@view
@external
def members_at(cluster_id: uint256, block_number: uint256) -> DynArray[uint256, MAX_MEMBERS]:
    """
    @notice The cluster's members in the state after block `block_number`, in joining order.
    """
    assert block_number <= block.number, "block is in the future"
    return self._members_at(cluster_id, block_number)


@view
@external
def member_keys_at(cluster_id: uint256, block_number: uint256) -> DynArray[bytes32, MAX_MEMBERS]:
    """
    @notice The validator keys of `members_at(cluster_id, block_number)`, same order.
    """
    assert block_number <= block.number, "block is in the future"
    ids: DynArray[uint256, MAX_MEMBERS] = self._members_at(cluster_id, block_number)
    keys: DynArray[bytes32, MAX_MEMBERS] = []
    for node_id: uint256 in ids:
        keys.append(self._nodes[node_id].validator_key)
    return keys


@view
@external
def member_attesters_at(cluster_id: uint256, block_number: uint256) -> DynArray[address, MAX_MEMBERS]:
    """
    @notice The attesters of `members_at(cluster_id, block_number)`, same order; the empty
            address for a member that had none yet in the state after that block (a node
            sets its attester once, so the answer for a past block never changes).
    """
    assert block_number <= block.number, "block is in the future"
    ids: DynArray[uint256, MAX_MEMBERS] = self._members_at(cluster_id, block_number)
    attesters: DynArray[address, MAX_MEMBERS] = []
    for node_id: uint256 in ids:
        attester: address = empty(address)
        if self.attester_since[node_id] <= block_number:
            attester = self.attester_of[node_id]
        attesters.append(attester)
    return attesters
