"""A cluster node's state machine process: the ABCI application around the VM and the store."""
