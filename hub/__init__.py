"""benchfleet hub: MQTT ingest, presence, job engine, REST API (DESIGN §3-§5).

Imports ``protocol`` only; never ``agent`` (DESIGN §2).
"""
