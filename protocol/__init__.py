"""Shared contracts between agent and hub: topic scheme, message models, codec; and the few
helpers both sides need (log redaction, asyncio waits that survive Python 3.11's wait_for).

Imports nothing of ours (DESIGN §2). See docs/protocol.md.
"""

from protocol.codec import MAX_PAYLOAD_BYTES, Decoded, Rejection, decode, decode_as, encode
from protocol.models import SCHEMA_VERSION

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "Decoded",
    "Rejection",
    "decode",
    "decode_as",
    "encode",
]
