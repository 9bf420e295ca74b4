"""Block history in Swarm: one record per block, chained, with state snapshots and a head feed.

`record` (what a block's record holds and how records are checked against each other),
`snapshot` (the state at one height, in parts), `uploader` (the node's background
uploader and the head its feed points to), `restore` (rebuilding a node from Swarm).
"""

from .record import BlockRecord, RecordError, check_contents, check_link
from .snapshot import Manifest, SnapshotError
from .uploader import Head, HistoryUploader, Snapshots, history_topic

__all__ = [
    "BlockRecord", "Head", "HistoryUploader", "Manifest", "RecordError", "SnapshotError", "Snapshots",
    "check_contents", "check_link", "history_topic",
]
