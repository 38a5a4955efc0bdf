"""Pair rules (which chosen wins, what is dropped and why) and the rows TRL reads."""

from __future__ import annotations

import json

import pytest

from app.prompt import ocr_messages
from training.retrain.choice import PairRules, choose
from training.retrain.judges import ReferenceJudge, StructuralJudge
from training.retrain.pairs import build_pairs, load_pairs, read_pairs, report

from ..records import CLEAN, LOOP, LOOPING_JSON, record, write_snapshot

FIXED = '{"header":"","margin":"","footer":"","text":"Nota fiscal corrigida"}'
OTHER = '{"header":"","margin":"","footer":"","text":"Outra nota"}'
FEEDBACK = {"page": 1, "text": "Nota fiscal corrigida", "time": 1.0}


def candidate(text: str, degenerate: bool = False) -> dict:
    return {"text": text, "degenerate": degenerate, "seed": 0, "temperature": 0.7}


class Fixed:
    """A judge with a score per text."""

    name = "fixed"

    def __init__(self, scores: dict[str, float | None]) -> None:
        self.scores = scores

    def score(self, candidate, *, reference=None, image_png=None):
        return self.scores.get(candidate)


CASES = [
    # id, record overrides, feedback, candidates, judge, expected (source, chosen) or reason
    (
        "feedback beats all",
        {"recovered": True, "final_output": CLEAN},
        FEEDBACK,
        [candidate(OTHER)],
        Fixed({OTHER: 1.0}),
        ("feedback", FIXED),
    ),
    (
        "feedback of another page is ignored",
        {"recovered": True, "final_output": CLEAN},
        {**FEEDBACK, "page": 2},
        [],
        None,
        ("recovered", CLEAN),
    ),
    (
        "recovered beats candidates",
        {"recovered": True, "final_output": CLEAN},
        None,
        [candidate(OTHER)],
        Fixed({OTHER: 1.0}),
        ("recovered", CLEAN),
    ),
    (
        "unrecovered final output is not used",
        {"recovered": False, "final_output": CLEAN},
        None,
        [],
        None,
        "no_chosen",
    ),
    (
        "looping recovery falls through to candidates",
        {"recovered": True, "final_output": LOOPING_JSON},
        None,
        [candidate(OTHER)],
        Fixed({OTHER: 0.9}),
        ("candidate", OTHER),
    ),
    (
        "looping recovery alone",
        {"recovered": True, "final_output": LOOPING_JSON},
        None,
        [],
        None,
        "chosen_degenerate",
    ),
    (
        "recovery not the schema",
        {"recovered": True, "final_output": "Nota fiscal"},
        None,
        [],
        None,
        "chosen_not_schema",
    ),
    (
        "recovery equal to rejected",
        {"recovered": True, "final_output": LOOP + "  "},
        None,
        [],
        None,
        "chosen_equals_rejected",
    ),
    ("nothing at all", {}, None, [], None, "no_chosen"),
    (
        "best judged candidate",
        {},
        None,
        [candidate(CLEAN), candidate(OTHER)],
        Fixed({CLEAN: 0.6, OTHER: 0.8}),
        ("candidate", OTHER),
    ),
    (
        "degenerate-labelled candidates",
        {},
        None,
        [candidate(CLEAN, degenerate=True)],
        Fixed({CLEAN: 1.0}),
        "chosen_degenerate",
    ),
    (
        "candidate that loops unlabelled",
        {},
        None,
        [candidate(LOOPING_JSON)],
        Fixed({LOOPING_JSON: 1.0}),
        "chosen_degenerate",
    ),
    (
        "candidate equal to rejected",
        {},
        None,
        [candidate(LOOP)],
        Fixed({LOOP: 1.0}),
        "chosen_equals_rejected",
    ),
    ("below minimum score", {}, None, [candidate(CLEAN)], Fixed({CLEAN: 0.2}), "judge_below_min"),
    ("judge abstains", {}, None, [candidate(CLEAN)], Fixed({}), "judge_abstained"),
    (
        "feedback with only text",
        {},
        {"text": "Nota fiscal corrigida"},
        [],
        None,
        ("feedback", FIXED),
    ),
    ("feedback without fields", {}, {"page": 1, "note": "bad page"}, [], None, "no_chosen"),
]


@pytest.mark.parametrize(
    ("overrides", "feedback", "candidates", "judge", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_choose(overrides, feedback, candidates, judge, expected):
    choice = choose(record("r", **overrides), feedback, candidates, PairRules(judge))
    if isinstance(expected, tuple):
        assert (choice.source, choice.chosen, choice.reason) == (*expected, None)
    else:
        assert (choice.chosen, choice.reason) == (None, expected)


def test_reference_judge_picks_the_closest_candidate():
    near = '{"header":"","margin":"","footer":"","text":"Nota fiscal n 123"}'
    far = '{"header":"","margin":"","footer":"","text":"Recibo"}'
    choice = choose(
        record("r"),
        None,
        [candidate(far), candidate(near)],
        PairRules(ReferenceJudge()),
        reference=CLEAN,
    )
    assert (choice.source, choice.chosen) == ("candidate", near)
    assert choice.score == pytest.approx(1 - 1 / 18)


def test_build_pairs_writes_trl_rows_and_counts_drops(tmp_path, random_model):
    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [
            (record("a"), FEEDBACK),
            (record("b", recovered=True, final_output=CLEAN), None),
            (record("c", recovered=True, final_output=LOOPING_JSON), None),
            (record("d", prompt="Transcreva."), None),
        ],
    )
    candidates = {"page_key": "d#1", "text": CLEAN, "degenerate": False}
    (snapshot / "candidates.jsonl").write_text(json.dumps(candidates) + "\n")
    out = tmp_path / "pairs"

    stats = build_pairs(snapshot, out, PairRules(StructuralJudge()))

    assert stats.rows == 3 and dict(stats.by_source) == {
        "feedback": 1,
        "recovered": 1,
        "candidate": 1,
    }
    assert dict(stats.by_rejected) == {"live": 3}
    assert dict(stats.dropped) == {"chosen_degenerate": 1}
    assert "pages dropped (chosen_degenerate): 1" in report(stats)
    rows = read_pairs(out)
    assert rows[0]["prompt"] == ocr_messages(record("a").prompt)
    assert rows[2]["prompt"] == ocr_messages("Transcreva.")
    assert rows[0]["chosen"] == [{"role": "assistant", "content": FIXED}]
    assert rows[1]["rejected"] == [{"role": "assistant", "content": LOOP}]
    assert all((out / row["images"][0]).exists() for row in rows)

    dataset = load_pairs(out)
    assert dataset.column_names == ["images", "prompt", "chosen", "rejected"]
    assert dataset[0]["images"][0].size == (56, 56)

    from transformers import AutoProcessor
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    processor = AutoProcessor.from_pretrained(random_model)
    batch = DataCollatorForVisionPreference(processor)([dataset[0], dataset[1]])
    assert batch["input_ids"].shape[0] == 4  # chosen and rejected of each row
    assert batch["completion_mask"].sum() > 0 and "pixel_values" in batch


def text_page_png() -> bytes:
    """A page with three printed lines: app/page_lines.py counts text on it."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("L", (200, 90), 255)
    draw = ImageDraw.Draw(image)
    for n in range(3):
        draw.text((10, 10 + 25 * n), "Nota fiscal 123 item", fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_anchor_rows_hold_clean_served_pages_with_text(tmp_path):
    from ..records import write_kept_pages

    snapshot = write_snapshot(
        tmp_path / "snapshot", [(record("a"), FEEDBACK), (record("b"), FEEDBACK)]
    )
    write_kept_pages(snapshot, ["k1", "k2", "k3"])  # noise images: no text line
    write_kept_pages(snapshot, ["guess", "t1", "t2", "t3"])
    write_kept_pages(snapshot, ["loop"], output=LOOPING_JSON)
    for name in ("guess", "t1", "t2", "t3", "loop"):
        (snapshot / f"images/kept-{name}.png").write_bytes(text_page_png())
    # samples: the same text again where the model reads; scattered where it guesses
    scattered = [OTHER, '{"text": "Nada disso"}', FIXED, '{"text": "Outra coisa qualquer"}']
    near = CLEAN.replace("123", "128")  # one character off
    samples = {name: [CLEAN, CLEAN, near, CLEAN] for name in ("t1", "t2", "t3", "loop")}
    samples["guess"] = scattered
    lines = [
        json.dumps({"page_key": f"{name}#1", "text": text, "degenerate": False})
        for name, texts in samples.items()
        for text in texts
    ]
    (snapshot / "candidates.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "pairs"

    stats = build_pairs(snapshot, out, PairRules(StructuralJudge(), anchor_ratio=1.0))

    assert dict(stats.by_source) == {"feedback": 2, "anchor": 2}  # one anchor per pair
    rows = read_pairs(out)
    anchors = [row for row in rows if row["meta"]["source"] == "anchor"]
    assert [row["meta"]["request_id"] for row in anchors] == ["t1", "t2"]
    assert all(row["chosen"] == row["rejected"] for row in anchors)
    assert anchors[0]["chosen"] == [{"role": "assistant", "content": CLEAN}]
    # noise pages, the page whose samples scatter, and the looping one
    assert stats.dropped["no_rejected"] == 5
    assert all((out / row["images"][0]).exists() for row in rows)
    assert "2 pairs from 10 pages, and 2 anchor rows (NLL only)" in report(stats)

    without = build_pairs(snapshot, tmp_path / "plain", PairRules(StructuralJudge()))
    assert "anchor" not in without.by_source and without.rows == 2


def test_replay_rows_rehearse_the_supervised_pages_with_ocrguards_own_prompt(tmp_path):
    from training.model.synth import write_dataset
    from training.retrain.pairs import check_replay

    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [(record("a"), FEEDBACK), (record("b"), FEEDBACK), (record("c"), FEEDBACK)],
    )
    replay = write_dataset(tmp_path / "sft", seed=0, count=6, kinds=("line", "receipt"))
    targets = [
        json.loads(line)["target"] for line in (replay / "samples.jsonl").read_text().splitlines()
    ]
    out = tmp_path / "pairs"

    stats = build_pairs(
        snapshot, out, PairRules(StructuralJudge(), replay=replay, replay_ratio=2 / 3)
    )

    assert dict(stats.by_source) == {"feedback": 3, "replay": 2}  # 2/3 of a row per pair
    rows = read_pairs(out)
    replayed = [row for row in rows if row["meta"]["source"] == "replay"]
    texts = [row["chosen"][0]["content"] for row in replayed]
    assert len(set(texts)) == 2 and set(texts) <= set(targets)
    assert all(row["chosen"] == row["rejected"] for row in replayed)
    assert all(row["prompt"] == ocr_messages() for row in replayed)
    # the same rows on every build (a try is reproducible)
    again = build_pairs(snapshot, tmp_path / "again", PairRules(replay=replay, replay_ratio=2 / 3))
    assert [r["chosen"] for r in read_pairs(tmp_path / "again")][-2:] == [
        r["chosen"] for r in replayed
    ]
    assert again.by_source["replay"] == 2
    assert all((out / row["images"][0]).exists() for row in replayed)
    assert "3 pairs from 3 pages, and 2 replay rows (NLL only)" in report(stats)
    assert len(load_pairs(out)) == 5

    with pytest.raises(ValueError, match="needs --replay"):
        check_replay(None, 0.5)
    with pytest.raises(ValueError, match="holds no samples.jsonl"):
        check_replay(tmp_path, 0.5)


# Loop style: only the step into the loop is judged.

LOOPING_TEXT = (
    '{"header":"Prefeitura","margin":"","footer":"","text":"Nota fiscal\\nItem 1\\nItem 1\\nItem 1'
)
SECOND_COPY = LOOPING_TEXT.index("Item 1") + len("Item 1\\n")


@pytest.mark.parametrize(
    ("text", "split", "prefix", "closing"),
    [
        # in the last field: the quote and the brace
        (LOOPING_TEXT, SECOND_COPY, LOOPING_TEXT[:SECOND_COPY], '"}'),
        # in the header: the fields after it, empty
        (
            '{"header":"ABC ABC ABC ABC',
            len('{"header":"ABC '),
            '{"header":"ABC ',
            '","margin":"","footer":"","text":""}',
        ),
        # spaced JSON (other models write it), the cut right after an escape's backslash
        # moves back before it
        ('{"text": "a\\nb\\nb\\nb', len('{"text": "a\\nb\\'), '{"text": "a\\nb', '"}'),
    ],
    ids=["last-field", "header", "spaced-escape"],
)
def test_cut_at_loop_shares_the_text_before_the_second_copy(text, split, prefix, closing):
    from app.labeler import CHARACTERS
    from app.prompt import parse_output
    from training.retrain.pairs import cut_at_loop

    cut = cut_at_loop(text, split, CHARACTERS)

    assert cut == (prefix, closing, text[len(prefix) :])
    assert parse_output(prefix + closing) is not None


@pytest.mark.parametrize(
    "split", [None, 0, len(LOOPING_TEXT), 3], ids=["unknown", "start", "end", "inside-a-key"]
)
def test_no_cut_where_the_json_cannot_be_closed(split):
    from app.labeler import CHARACTERS
    from training.retrain.pairs import cut_at_loop

    assert cut_at_loop(LOOPING_TEXT, split, CHARACTERS) is None


def test_a_cut_moves_back_to_where_the_tokenizer_reads_both_parts_as_the_whole(random_model):
    # a byte-level BPE attaches a word's leading space to it: cut after the space, the
    # prefix would end in a lone space token the model never wrote
    from transformers import AutoTokenizer

    from training.retrain.pairs import cut_at_loop

    tokenizer = AutoTokenizer.from_pretrained(random_model)
    text = '{"header":"","margin":"","footer":"","text":"Nota fiscal Nota fiscal Nota fiscal'
    split = text.index("Nota fiscal ") + len("Nota fiscal ")

    prefix, closing, loop = cut_at_loop(text, split, tokenizer)

    assert prefix == text[: split - 1] and loop == " Nota fiscal Nota fiscal"
    whole = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.encode(prefix) + tokenizer.encode(loop) == whole


def test_loop_style_pairs_share_the_start_and_teach_the_page_without_pushing_it(tmp_path):
    looping = LOOPING_TEXT
    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [
            (record("a", output=looping, repeat_chars=SECOND_COPY), FEEDBACK),
            (record("b", output=looping), FEEDBACK),  # an old record: no cut point known
        ],
    )
    sampled = candidate(looping + "\\nItem 1", degenerate=True) | {
        "page_key": "a#1",
        "repeat_chars": SECOND_COPY,
    }
    (snapshot / "candidates.jsonl").write_text(json.dumps(sampled) + "\n")
    out = tmp_path / "pairs"

    stats = build_pairs(snapshot, out, PairRules(pair_style="loop"))

    rows = read_pairs(out)
    page, live, sampled_row = rows
    assert page["chosen"] == page["rejected"] == [{"role": "assistant", "content": FIXED}]
    assert page["meta"]["source"] == "page" and page["meta"]["chosen_from"] == "feedback"
    for row in (live, sampled_row):
        assert row["prefix"] == looping[:SECOND_COPY]
        assert row["chosen"] == [{"role": "assistant", "content": '"}'}]
        assert row["meta"]["source"] == "cut"
    assert live["rejected"] == [{"role": "assistant", "content": "Item 1\\nItem 1"}]
    assert sampled_row["rejected"][0]["content"] == "Item 1\\nItem 1\\nItem 1"
    assert dict(stats.by_source) == {"page": 1, "cut": 2}
    assert dict(stats.by_rejected) == {"page": 1, "live": 1, "candidate": 1}
    assert stats.uncut == 1  # page b: its only degenerate text has no cut, so no rows at all
    text = report(stats)
    assert text.startswith("2 pairs from 2 pages, and 1 page rows")
    assert "without a usable cut (left out): 1" in text
    assert json.loads((out / "manifest.json").read_text())["pair_style"] == "loop"
    with pytest.raises(ValueError, match="processor"):
        load_pairs(out)


def test_loop_or_whole_pairs_a_text_without_a_cut_whole(tmp_path):
    snapshot = write_snapshot(
        tmp_path / "snapshot",
        [
            (record("a", output=LOOPING_TEXT, repeat_chars=SECOND_COPY), FEEDBACK),
            (record("b", output=LOOPING_TEXT), FEEDBACK),  # no cut point known
        ],
    )
    out = tmp_path / "pairs"

    stats = build_pairs(snapshot, out, PairRules(pair_style="loop_or_whole"))

    page, cut, whole = read_pairs(out)
    assert page["meta"]["source"] == "page" and cut["meta"]["source"] == "cut"
    assert "prefix" not in whole and whole["meta"]["request_id"] == "b"
    assert whole["chosen"] == [{"role": "assistant", "content": FIXED}]
    assert whole["rejected"] == [{"role": "assistant", "content": LOOPING_TEXT}]
    assert dict(stats.by_source) == {"page": 1, "cut": 1, "feedback": 1}
    assert "without a usable cut (paired whole: 1): 1" in report(stats)
