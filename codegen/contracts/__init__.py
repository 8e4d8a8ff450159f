"""Contracts: compatibility between a writer's and a reader's class, the contract
snapshot (``contracts.lock.json``) and breaking-change detection between two
snapshots."""
