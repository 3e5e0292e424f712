"""Settings of click and open tracking (issue 15): the human-or-machine rules' thresholds and
how long per-subscriber events are kept. ``Settings`` inherits them (config.py is near its size
limit); each is ``NEWSLETTER_<NAME>`` in the environment.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class AnalyticsSettings(BaseSettings):
    track_machine_seconds: float = Field(
        10.0,
        ge=0,
        description=(
            "a click this soon after the message was handed to the receiving server is a "
            "machine's (link scanners fetch every link within seconds of delivery)"
        ),
    )
    track_burst_seconds: float = Field(
        5.0, ge=0, description="clicks of one message within this window count as one burst"
    )
    track_burst_links: int = Field(
        4, ge=2, description="a burst that clicks at least this many links is a machine's"
    )
    track_burst_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="... and at least this share of the message's links (the larger counts)",
    )
    track_retention_days: int = Field(
        395,
        ge=1,
        description=(
            "per-subscriber events are kept this long after an issue was sent, then folded "
            "into counts without subscriber ids"
        ),
    )
    track_flush_seconds: float = Field(
        0.2,
        ge=0,
        le=5,
        description=(
            "each web process records its tracking events every this many seconds, many at a "
            "time (a SIGKILL loses at most this long's events; a clean stop none); 0: each "
            "event at once, after its response"
        ),
    )
