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
