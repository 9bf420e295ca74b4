"""Where things live in the authenticated state: one tree, three namespaces.

The prefixes keep the backend's keys, the sessions' records and results, and the
cluster's metadata apart, so no backend write can ever forge a result record or the code hash.
"""

BACKEND_PREFIX = b"k/"
META_PREFIX = b"m/"
# Sessions keep their records under s/, q/, r/ (results by session and counter) and d/:
# see rtc.sessions.ordering.

CODE_HASH_KEY = META_PREFIX + b"code_hash"
SETTINGS_KEY = META_PREFIX + b"settings"  # canonical JSON of the ClusterSettings
CHAIN_ID_KEY = META_PREFIX + b"chain_id"  # signatures bind transactions to it
MEMBERSHIP_KEY = META_PREFIX + b"membership"  # the validator set and the Ethereum block it follows


def backend_key(key: bytes) -> bytes:
    return BACKEND_PREFIX + key
