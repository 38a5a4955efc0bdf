"""The failure record contract: stream entries round-trip, other schemas are refused, keys."""

from __future__ import annotations

import pytest

from app.failure_record import RECORD_SCHEMA, FailureRecord, RedisKeys, SchemaMismatch
from app.guard import Verdict
from app.guard.recovery import Attempt, AttemptResult
from app.prompt import PagePrompt


def _tripped() -> AttemptResult:
    result = AttemptResult(Attempt(2, "retry", 0.4, seed=7), token_ids=[5, 6, 5, 6, 5, 6])
    result.verdict = Verdict("ngram_loop", period=2, onset=0, repeats=3, trip_at=6)
    return result


def _record(**overrides) -> FailureRecord:
    values = dict(
        request_id="r1",
        page=2,
        model_id="m",
        model_revision="rev",
        prompt_version="p1",
        prompt=PagePrompt("Transcreva"),
        guard_version="g1",
        guard_mode="recover",
        image_sha256="abc",
        max_tokens=64,
        output="ab" * 3,
        decode=lambda ids: "ab"[: len(ids)] * (len(ids) // 2) + "a" * (len(ids) % 2),
        recovered=True,
        final_output="ab",
        attempts=[{"number": 1}],
    )
    return FailureRecord.of_attempt(_tripped(), **{**values, **overrides})


def test_a_record_of_an_attempt_carries_its_sampling_and_verdict():
    record = _record()
    assert record.attempt == 2 and record.output_token_ids == [5, 6, 5, 6, 5, 6]
    assert record.sampling == {
        "temperature": 0.4,
        "seed": 7,
        "max_tokens": 64,
        "mode": "retry",
        "prefix_tokens": 0,
    }
    assert record.verdict["kind"] == "ngram_loop"
    assert (record.onset_chars, record.repeat_chars) == (0, 2)  # the second copy starts at 2


def test_only_a_tripped_attempt_makes_a_record():
    with pytest.raises(ValueError):
        FailureRecord.of_attempt(AttemptResult(Attempt(1, "initial", 0.0)), **_values())


def _values():
    record = _record()
    fields = ("request_id", "page", "model_id", "model_revision", "prompt_version", "prompt")
    more = ("guard_version", "guard_mode", "image_sha256", "output", "recovered", "final_output")
    values = {f: getattr(record, f) for f in fields + more}
    values = {**values, "prompt": record.page_prompt, "max_tokens": 64, "attempts": []}
    return {**values, "decode": lambda ids: "x" * len(ids)}


def test_stream_fields_round_trip():
    record = _record()
    fields = record.to_fields()
    assert fields["schema"] == RECORD_SCHEMA
    assert all(isinstance(v, str) for v in fields.values())
    assert FailureRecord.from_fields(fields) == record


@pytest.mark.parametrize("schema", [None, "0", "3"])
def test_an_entry_of_another_schema_is_refused(schema):
    fields = _record().to_fields()
    if schema is None:
        del fields["schema"]
    else:
        fields["schema"] = schema
    with pytest.raises(SchemaMismatch, match="schema"):
        FailureRecord.from_fields(fields)


def test_keys_share_one_prefix():
    keys = RedisKeys(prefix="x:", stream="x:failures")
    assert keys.image("s") == "x:image:s"
    assert keys.request("r") == "x:request:r"
    assert keys.feedback("r") == "x:feedback:r"
    assert keys.stream == "x:failures"


def test_a_version_1_entry_reads_with_the_default_prompt_layout():
    fields = _record().to_fields()
    fields["schema"] = "1"
    del fields["prompt_system"], fields["prompt_image_first"]
    record = FailureRecord.from_fields(fields)
    assert record.page_prompt == PagePrompt("Transcreva")


def test_a_client_prompt_is_kept_whole():
    prompt = PagePrompt("Read this page as YAML.", system="You are OCR.", image_first=False)
    record = FailureRecord.from_fields(_record(prompt=prompt).to_fields())
    assert record.page_prompt == prompt
