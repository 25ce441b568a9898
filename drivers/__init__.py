"""Device drivers: one package per family (laser, camera, ...), each with a simulator.

Knows nothing of MQTT, jobs or the hub (DESIGN §2): imports nothing of ours but itself.
"""
