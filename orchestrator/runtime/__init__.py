"""Where subspaces run (Ray actors or in-process executors) and the durable run checkpoint."""
