"""Hardening helpers shared by the CLI and the stages: read-only SQL, literal output, secret redaction,
confined data paths, privacy state. Plain library code (no Prefect import)."""
