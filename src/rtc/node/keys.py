"""Where things live in the authenticated state: one tree, three namespaces.

The prefixes keep the backend's keys, the stored results and the cluster's metadata
apart, so no backend write can ever forge a result record or the code hash.
"""

BACKEND_PREFIX = b"k/"
RESULT_PREFIX = b"r/"
META_PREFIX = b"m/"

CODE_HASH_KEY = META_PREFIX + b"code_hash"
SETTINGS_KEY = META_PREFIX + b"settings"  # canonical JSON of the ClusterSettings


def backend_key(key: bytes) -> bytes:
    return BACKEND_PREFIX + key


def result_key(tx_hash: bytes) -> bytes:
    return RESULT_PREFIX + tx_hash
