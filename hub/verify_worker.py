"""The OCR worker process's entry point, in a module of its own.

A spawned worker imports the module of the function it runs. This one imports nothing of the
hub but :mod:`hub.verification`, so a worker never loads the database layer, and a directory
in the hub's working directory that happens to share a hub module's name (the demo runs the hub
inside its data dir, which holds ``hub/proofs/``) cannot shadow what the worker needs.
"""

from __future__ import annotations

from typing import Any


def verify_in_worker(
    image: bytes, text: str, font: str | None, template: str | None
) -> dict[str, Any]:
    """Plain arguments in, the result as a JSON-able dict out (the pipeline caches one OCR
    engine per process)."""
    from hub.verification import Expected, verify_bytes

    result: dict[str, Any] = verify_bytes(image, Expected(text, font, template)).model_dump(
        mode="json"
    )
    return result
