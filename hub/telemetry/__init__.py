"""The hub's telemetry: ingest with a ledger, gap detection and resync, the embedded sink's
rollups and retention (docs/telemetry.md, "Hub side")."""
