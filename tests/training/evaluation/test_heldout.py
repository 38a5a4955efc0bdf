"""``training eval``: the per-page records agree with the summary, on the held-out pages."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.prompt import PageFields
from tests.models import save_random_model
from training.evaluation.heldout import EVAL_SEED, evaluate_loaded, evaluate_model
from training.model.synth import Generator

pytestmark = pytest.mark.slow


def test_evaluation_records_every_page_and_summarises_them(tmp_path):
    model = save_random_model(tmp_path / "model")
    records: list[dict] = []
    results = evaluate_model(str(model), ("line", "form"), 3, 6, batch_size=2, records=records)

    assert [r["kind"] for r in records] == ["line"] * 3 + ["form"] * 3
    held_out = Generator(EVAL_SEED)
    for n, record in enumerate(records):
        page = held_out.sample(n % 3, record["kind"])
        assert record["reference"] == page.fields.transcription
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
        assert parsed.footer and parsed.transcription == record["hypothesis"]


def test_an_evaluation_leaves_the_tokenizer_as_it_found_it(tmp_path):
    # SFT evaluates in between checkpoints; its batches pad on the left, which the saved
    # tokenizer must not keep (it did: every checkpoint's tokenizer.json padded on the left).
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = save_random_model(tmp_path / "model")
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    side = processor.tokenizer.padding_side
    evaluate_loaded(processor, model, ("line",), 2, 2, batch_size=2)
    assert processor.tokenizer.padding_side == side
    processor.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["padding"] is None


def test_tables_name_the_guard_and_batch_that_made_the_results_not_the_reader():
    from training.evaluation.heldout import render_tables

    score = {"pages": 1, "cer": 0.0, "exact_rate": 1.0, "valid_json_rate": 1.0}
    score |= {"degeneration_rate": 0.0, "mean_generated_tokens": 3.0, "tokens_per_second": 9.0}
    results = {"per_kind": 1, "max_new_tokens": 8, "guard_version": "1999.1.1"}
    results |= {"models": {"m": {"line": score}}, "prone": {}}
    assert "guard 1999.1.1" in render_tables(results, 1, "cpu").splitlines()[0]
    results["page_evidence"] = True
    header = render_tables(results, 1, "cpu").splitlines()[0]
    assert header.endswith("guard 1999.1.1 with the page's line count")
    assert "batch 1, device cpu" in header  # the reader's, where the results do not say
    results |= {"batch_size": 20, "device": "cuda"}
    assert "batch 20, device cuda" in render_tables(results, 0, "cpu").splitlines()[0]


def test_page_evidence_labels_each_page_with_its_count_of_text_lines(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from app.page_lines import count_text_lines
    from training.retrain.traffic import Traffic

    path = save_random_model(tmp_path / "model")
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    source = Traffic("heldout").sample
    told: list[dict] = []
    evaluate_loaded(
        processor, model, ("blank", "receipt"), 2, 4, 2, records=told, source=source,
        page_evidence=True,
    )  # fmt: skip
    pages = [source(n, kind) for kind in ("blank", "receipt") for n in range(2)]
    assert [r["page_lines"] for r in told] == [count_text_lines(p.image) for p in pages]
    assert told[0]["page_lines"] == 0 and told[2]["page_lines"] > 0  # blank, then a receipt
    text_only: list[dict] = []
    evaluate_loaded(processor, model, ("blank",), 1, 4, 1, records=text_only, source=source)
    assert text_only[0]["page_lines"] is None
