"""Prometheus metrics of the hub, defined once at import so several apps in one process
(tests) share them instead of failing with "Duplicated timeseries"."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES_RECEIVED = Counter(
    "benchfleet_hub_messages_received_total",
    "Station messages received, by message kind (topic's last level).",
    ["kind"],
)
MESSAGES_REJECTED = Counter(
    "benchfleet_hub_rejected_messages_total",
    "Payloads refused and kept as dead letters, by reason kind.",
    ["reason_kind"],
)
DUPLICATES = Counter(
    "benchfleet_hub_duplicate_messages_total",
    "Outbox messages seen again (same station, epoch, seq) and answered from the inbox.",
    ["kind"],
)
STALE_DEATHS = Counter(
    "benchfleet_hub_stale_deaths_ignored_total",
    "Death messages ignored because they named an older connection than the current one.",
)
JOB_TRANSITIONS = Counter(
    "benchfleet_hub_job_transitions_total",
    "Accepted job transitions, by the status moved to.",
    ["to_status"],
)
JOB_UPDATES_REJECTED = Counter(
    "benchfleet_hub_job_updates_rejected_total",
    "Station job updates refused (stale version, wrong station, transition not allowed).",
)
PROCESSING_ERRORS = Counter(
    "benchfleet_hub_processing_errors_total",
    "Messages whose processing failed unexpectedly (the station's outbox re-sends them).",
)
STATIONS_ONLINE = Gauge("benchfleet_hub_stations_online", "Stations currently online.")
TELEMETRY_POINTS_STORED = Counter(
    "benchfleet_hub_telemetry_points_stored_total",
    "Telemetry points stored in the embedded sink.",
)
TELEMETRY_POINTS_REJECTED = Counter(
    "benchfleet_hub_telemetry_points_rejected_total",
    "Telemetry points refused, by reason (the ledger keeps them per station and batch).",
    ["reason"],
)
TELEMETRY_DUPLICATE_POINTS = Counter(
    "benchfleet_hub_telemetry_duplicate_points_total",
    "Telemetry points in re-delivered batches (answered from the inbox, not stored again).",
)
TELEMETRY_POINTS_EXPIRED = Counter(
    "benchfleet_hub_telemetry_points_expired_total",
    "Raw telemetry points removed by retention after their rollup and export.",
)
TELEMETRY_GAPS = Counter(
    "benchfleet_hub_telemetry_gaps_total",
    "Station seq gaps, by what happened: detected, opened (resync asked), closed.",
    ["event"],
)
TELEMETRY_RESYNCS = Counter(
    "benchfleet_hub_telemetry_resyncs_total",
    "Resync commands sent to stations with a stuck seq gap.",
)
ALARMS_OPEN = Gauge(
    "benchfleet_hub_alarms_open",
    "Alarms not cleared yet, by severity and state (active or acknowledged).",
    ["severity", "state"],
)
INFLUX_EXPORTED = Counter(
    "benchfleet_hub_influx_points_exported_total",
    "Telemetry points InfluxDB accepted from the export sink.",
)
INFLUX_BATCHES = Counter(
    "benchfleet_hub_influx_batches_total",
    "Successful InfluxDB write requests (bisection after a refusal adds smaller ones).",
)
INFLUX_RETRIES = Counter(
    "benchfleet_hub_influx_retries_total",
    "InfluxDB writes retried after 5xx, 429, 408 or a connection error.",
)
INFLUX_REJECTED = Counter(
    "benchfleet_hub_influx_points_rejected_total",
    "Telemetry points InfluxDB refused or line protocol cannot carry (kept as dead letters).",
)
INFLUX_LAG = Gauge(
    "benchfleet_hub_influx_lag_points",
    "Telemetry points stored but not yet exported (highest id minus the sink cursor).",
)
INFLUX_SINK_UP = Gauge(
    "benchfleet_hub_influx_sink_up",
    "1 while the InfluxDB export runs, 0 after it stopped on 401/403/404 (see the hub log).",
)
PROOF_TIMEOUTS = Counter(
    "benchfleet_hub_proof_timeouts_total",
    "Jobs moved from verifying to needs_review because their engraving proof did not arrive.",
)
PROOF_UPLOADS_EXPIRED = Counter(
    "benchfleet_hub_proof_uploads_expired_total",
    "Abandoned proof uploads whose staged chunks were removed (idle past proof_stage_max_age_s).",
)
PROOF_CHUNKS_EXPIRED = Counter(
    "benchfleet_hub_proof_chunks_expired_total",
    "Staged chunks removed with abandoned proof uploads.",
)
