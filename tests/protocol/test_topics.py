"""The topic scheme: one namespace per station, parsed strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import topics
from protocol.broker_url import parse_broker_url

station_ids = st.from_regex(topics.STATION_ID_PATTERN, fullmatch=True)


@given(station_id=station_ids, kind=st.sampled_from(list(topics.Up)))
def test_up_topics_parse_back(station_id: str, kind: topics.Up) -> None:
    parsed = topics.parse(topics.up(station_id, kind))
    assert (parsed.station_id, parsed.direction, parsed.kind) == (station_id, "up", kind.value)


@given(station_id=station_ids, kind=st.sampled_from(list(topics.Down)))
def test_down_topics_parse_back(station_id: str, kind: topics.Down) -> None:
    parsed = topics.parse(topics.down(station_id, kind))
    assert (parsed.station_id, parsed.direction, parsed.kind) == (station_id, "down", kind.value)


@pytest.mark.parametrize("bad", ["", "+", "#", "a/b", "St-01", "-x", "x" * 64, "a b"])
def test_station_ids_that_would_break_topics_or_acls_are_refused(bad: str) -> None:
    assert not topics.is_valid_station_id(bad)
    with pytest.raises(topics.TopicError):
        topics.up(bad, topics.Up.JOB)


def test_filters() -> None:
    assert topics.up_filter() == "bf/v1/st/+/up/#"
    assert topics.down_filter("st-01") == "bf/v1/st/st-01/down/#"


def test_broker_url() -> None:
    url = parse_broker_url("mqtts://hub:s%40cret@broker.local")
    assert (url.host, url.port, url.tls, url.username, url.password) == (
        "broker.local",
        8883,
        True,
        "hub",
        "s@cret",
    )
    assert "s@cret" not in str(url)
    assert parse_broker_url("mqtt://127.0.0.1:1884").port == 1884


@pytest.mark.parametrize("bad", ["http://x", "mqtt://", "mqtt://h:99999", "broker:1883"])
def test_bad_broker_urls_say_why(bad: str) -> None:
    with pytest.raises(ValueError, match="broker URL"):
        parse_broker_url(bad)
