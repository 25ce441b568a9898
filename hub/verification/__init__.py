"""Engraving verification: does the photo show exactly the ordered text? (issue 8)

Pure functions - no database, no MQTT. See docs/verification.md for how verdicts are decided.
"""

from hub.verification.engine import OcrEngine, OcrLine, RapidOcrEngine, default_engine
from hub.verification.layout import LayoutError
from hub.verification.model import CharDiff, Expected, Verdict, VerificationResult
from hub.verification.pipeline import verify, verify_bytes
from hub.verification.preprocess import BadImageError

__all__ = [
    "BadImageError",
    "CharDiff",
    "Expected",
    "LayoutError",
    "OcrEngine",
    "OcrLine",
    "RapidOcrEngine",
    "Verdict",
    "VerificationResult",
    "default_engine",
    "verify",
    "verify_bytes",
]
