"""papers-digest's library: Hugging Face Daily Papers in, personal digests out. No Prefect here.

The names below are the types that cross the pipeline's seams
(source -> PaperRecord -> store -> ...); everything else is imported from its own module.
"""

from digest.errors import (
    ConfigError,
    DateMismatchError,
    DigestError,
    FetchError,
    ParseError,
    PartialFailure,
    SourceError,
    StoreError,
    TransientFetchError,
)
from digest.periods import Period
from digest.records import Organization, PaperRecord, Sighting
from digest.settings import Settings, load_settings

__all__ = [
    "ConfigError",
    "DateMismatchError",
    "DigestError",
    "FetchError",
    "Organization",
    "PaperRecord",
    "ParseError",
    "PartialFailure",
    "Period",
    "Settings",
    "Sighting",
    "SourceError",
    "StoreError",
    "TransientFetchError",
    "load_settings",
]
