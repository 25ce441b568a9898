"""GRBL 1.1 laser backend: protocol parsers, the streaming link, the driver and a simulator."""
