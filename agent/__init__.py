"""The station agent: devices, job runner, MQTT link with a durable outbox (DESIGN §3).

Imports ``protocol`` and ``drivers``, never ``hub``.
"""

__version__ = "0.1.0"
