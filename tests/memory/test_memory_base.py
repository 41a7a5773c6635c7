"""Items, ids and config validation."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from env.records import SourceType
from memory import Layer, MemoryConfig, MemoryItem, make_item_id
from memory.config import LayerThresholds

AT = dt.datetime(2024, 3, 1, 15, tzinfo=dt.timezone.utc)


def _item(**changes) -> MemoryItem:
    fields = dict(text="Fed holds rates", ticker="*", source_type=SourceType.MACRO, source_id="m1", public_at=AT)
    fields.update(changes)
    return MemoryItem(**fields)


def test_id_is_sha256_of_identity_fields_and_stable():
    item = _item()
    assert item.id == make_item_id("*", SourceType.MACRO, "m1", "Fed holds rates")
    assert item.id == _item().id
    assert len(item.id) == 64
    assert _item(text="Fed cuts rates").id != item.id
    assert _item(source_id="m2").id != item.id


def test_a_given_id_must_not_be_invented():
    assert MemoryItem.model_validate(_item().model_dump()).id == _item().id


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_rejected_naming_the_field(text):
    with pytest.raises(ValidationError, match="text"):
        _item(text=text)


def test_valid_utf8_bytes_are_decoded_without_note():
    item = _item(text="Zürich office opens".encode())
    assert item.text == "Zürich office opens"
    assert item.notes == ()


def test_invalid_utf8_bytes_are_replaced_and_noted():
    item = _item(text=b"caf\xe9 chain expands")
    assert item.text == "caf\ufffd chain expands"
    assert any("invalid UTF-8" in note and "byte 3" in note for note in item.notes)


def test_naive_public_at_is_rejected():
    with pytest.raises(ValidationError, match="timezone-aware"):
        _item(public_at=dt.datetime(2024, 3, 1))


def test_public_at_is_normalised_to_utc():
    est = dt.timezone(dt.timedelta(hours=-5))
    assert _item(public_at=dt.datetime(2024, 3, 1, 10, tzinfo=est)).public_at == AT


def test_importance_range_is_enforced():
    with pytest.raises(ValidationError, match="importance"):
        _item(importance=101)


def test_config_rejects_unknown_fields_and_inverted_hysteresis():
    with pytest.raises(ValidationError, match="extra"):
        MemoryConfig(k_per_layr=3)
    with pytest.raises(ValidationError, match="demote_to_shallow"):
        LayerThresholds(promote_to_intermediate=60, demote_to_shallow=65)
    with pytest.raises(ValidationError, match="reflection"):
        MemoryConfig(routing={SourceType.REFLECTION: Layer.DEEP})


def test_config_defaults_are_finmem():
    config = MemoryConfig()
    assert config.dynamics[Layer.SHALLOW].recency_q_days == 3
    assert config.dynamics[Layer.INTERMEDIATE].importance_decay == 0.967
    assert config.dynamics[Layer.DEEP].importance_decay == 0.988
    assert config.routing[SourceType.FILING_10K] is Layer.DEEP
    assert config.k_for(Layer.DEEP, {Layer.SHALLOW: 2}) == 0
