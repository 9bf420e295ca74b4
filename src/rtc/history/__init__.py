"""Block history in Swarm: one record per block, chained, with state snapshots and a head feed.

`record` (what a block's record and a feed's head hold, and how records are checked
against each other), `snapshot` (the state at one height, in parts), `uploader` (the
node's background uploader), `reader` (reading the history back and checking it) and
`config` (a node's Swarm and feed key). Restoring a node from it is `rtc.node.restore`.
"""

from .record import BlockRecord, Head, HistoryError, check_contents, check_link, history_topic
from .snapshot import Manifest, SnapshotError, Snapshots
from .uploader import ExecutedBlocks, HistoryUploader, RecordReferences

__all__ = [
    "BlockRecord", "ExecutedBlocks", "Head", "HistoryError", "HistoryUploader", "Manifest", "RecordReferences",
    "SnapshotError", "Snapshots", "check_contents", "check_link", "history_topic",
]
