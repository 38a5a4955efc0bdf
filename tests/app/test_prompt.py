"""The output schema parser."""

from __future__ import annotations

import pytest

from app.prompt import PageFields, parse_output


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"header":"H","margin":"","footer":"F","text":"T"}', PageFields("H", "", "F", "T")),
        ('```json\n{"text": "só texto"}\n```', PageFields(text="só texto")),
        ('{"header": null, "text": "x"}', PageFields(text="x")),
        ('{"text": 3}', None),
        ("[1, 2]", None),
        ('{"header": "unterminated', None),
        ("", None),
    ],
)
def test_parse_output(raw, expected):
    assert parse_output(raw) == expected


def test_round_trip_keeps_accents():
    fields = PageFields(header="São Paulo", text="Ação")
    assert parse_output(fields.to_json()) == fields
    assert "São" in fields.to_json()
