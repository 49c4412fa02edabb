"""The audit trail: append-only, hash-chained events in the caller's transaction; verify; history."""

from engine.audit.chain import GENESIS, ChainReport, canonical_json, history, record, verify

__all__ = ["GENESIS", "ChainReport", "canonical_json", "history", "record", "verify"]
