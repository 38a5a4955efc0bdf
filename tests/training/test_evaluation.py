"""``training eval``: the per-page records agree with the summary, on the held-out pages."""

from __future__ import annotations

import dataclasses

import pytest

from app.prompt import PageFields
from tests.models import save_random_model
from training.evaluation import EVAL_SEED, evaluate_model, transcription
from training.synth import Generator

pytestmark = pytest.mark.slow


def test_evaluation_records_every_page_and_summarises_them(tmp_path):
    model = save_random_model(tmp_path / "model")
    records: list[dict] = []
    results = evaluate_model(str(model), ("line", "form"), 3, 6, batch_size=2, records=records)

    assert [r["kind"] for r in records] == ["line"] * 3 + ["form"] * 3
    held_out = Generator(EVAL_SEED)
    for n, record in enumerate(records):
        page = held_out.sample(n % 3, record["kind"])
        assert record["reference"] == transcription(page.fields)
        assert record["reference_fields"] == dataclasses.asdict(page.fields)
        assert record["hypothesis_fields"] is None  # random weights do not write the JSON
        assert record["hypothesis"] != record["reference"]  # random weights do not read
    for kind in ("line", "form"):
        mine = [r for r in records if r["kind"] == kind]
        assert results[kind]["pages"] == 3
        assert results[kind]["cer"] == round(sum(r["cer"] for r in mine) / 3, 4)
        assert results[kind]["exact_rate"] == 0.0


def test_records_hold_both_sides_fields_where_the_output_parses():
    records: list[dict] = []
    evaluate_model("models/ocrguard-tiny", ("receipt",), 2, 128, batch_size=2, records=records)
    for n, record in enumerate(records):
        page = Generator(EVAL_SEED).sample(n, "receipt")
        assert record["reference_fields"] == dataclasses.asdict(page.fields)
        parsed = PageFields(**record["hypothesis_fields"])  # the embedded model writes the JSON
        assert parsed.footer and transcription(parsed) == record["hypothesis"]
