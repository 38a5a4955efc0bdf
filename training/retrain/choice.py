"""The two sides of a page's DPO pairs: which text is chosen, which are rejected.

Chosen, in order of trust: a person's correction; what the request returned when it came
from a clean generation (a recovery, or a page the guard never caught) and passes the guard
and the schema; else the best clean candidate by the judge. Rejected: every degenerate text
of the page, the live one and the degenerate candidates (the published construction keeps
the model's own degenerate outputs, not filtered ones), one pair each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.failure_record import FailureRecord
from app.labeler import CHARACTERS, Tokenizer
from app.prompt import OUTPUT_FIELDS, PageFields, parse_output

from .cases import Degenerate, PageCase, page_key
from .judges import Judge, degenerate

Source = Literal["feedback", "recovered", "served", "candidate", "anchor", "replay", "page", "cut"]
PairStyle = Literal["whole", "loop", "loop_or_whole"]
DropReason = Literal[
    "no_image",  # the page image expired before export: nothing to condition on
    "no_chosen",  # no correction, no clean returned text, no usable candidate
    "no_rejected",  # a clean page whose candidates were all clean too
    "chosen_equals_rejected",  # the only chosen on offer is a degenerate text itself
    "chosen_degenerate",  # the chosen on offer trips the guard
    "chosen_not_schema",  # the chosen on offer is not the JSON schema
    "judge_abstained",  # candidates exist but the judge scored none of them
    "judge_below_min",  # the best candidate scored under the minimum
]


@dataclass(frozen=True)
class Choice:
    """What ``choose_for`` decided for one page: a chosen text, or why there is none."""

    chosen: str | None
    source: Source | None = None
    score: float | None = None
    reason: DropReason | None = None


@dataclass
class PairRules:
    """How a chosen is picked and checked."""

    judge: Judge | None = None
    """Scores candidates; without one, candidates are not used."""
    min_score: float = 0.5
    """A candidate needs at least this score to be chosen."""
    tokenizer: Tokenizer = CHARACTERS
    """What the guard reads a chosen text with (the model's tokenizer when known)."""
    trust_feedback: bool = True
    """Human corrections skip the guard and schema checks: a person who typed a table with
    repeated rows meant it, and the guard is the heuristic here."""
    anchor_ratio: float = 0.0
    """Anchor rows per preference pair (0: none). An anchor is a kept clean page whose served
    output passes the guard and the schema, on an image that holds text: its row has that
    output as both chosen and rejected, so the DPO term's gradient is exactly zero there and
    only the NLL term (``sft_weight``) acts: it holds the model to what it already writes on
    healthy traffic while the pairs push it off its loops."""
    anchor_agreement: float = 0.9
    """An anchor's sampled candidates must agree with its served output this much on average
    (1 - CER): a model that writes the same text again when sampling is reading the page; one
    whose samples scatter is guessing, and an NLL term on its guess teaches it to guess."""
    replay: Path | None = None
    """A folder of the base model's own supervised pages (``samples.jsonl`` of ``{image,
    target}`` with the images beside it, as ``python -m training synth`` writes them):
    rehearsal rows, NLL-only like anchors but on ground truth of the kinds the model was
    fine-tuned for. Anchors hold it to what it writes on the traffic; replay holds it to the
    work it was trained to do, which the traffic may not show (a forgetting guard)."""
    replay_ratio: float = 0.0
    """Replay rows per preference pair (0: none)."""
    pair_style: PairStyle = "whole"
    """``whole``: the page's chosen text against each whole degenerate text (the published
    construction). ``loop``: the DPO term judges only the step into the loop. Each
    degenerate text is cut where its loop's second copy begins; the part before the cut
    becomes the prompt's start of the answer for both sides. The chosen side closes the
    JSON there and the rejected side goes on with the loop. The page's chosen text becomes
    an NLL-only row (source ``page``). The tokens the model wrote before the loop (often
    memorised lines it is right to write on other pages) are then neither pushed down nor
    trained on. A text with no usable cut (its loop's start unknown, or the text before it
    no JSON that a quote and a brace can close) is left out; ``loop_or_whole`` pairs it
    whole against the page's chosen text instead."""


def fields_json(fields: dict[str, Any] | None) -> str | None:
    """A correction's fields as the schema's JSON (None when it has none)."""
    if not fields or all(fields.get(f) is None for f in OUTPUT_FIELDS):
        return None
    return PageFields(**{f: fields.get(f) or "" for f in OUTPUT_FIELDS}).to_json()


def rejected_of(case: PageCase) -> list[Degenerate]:
    """The page's degenerate texts, each once: the live ones, then degenerate candidates."""
    found = list(case.live) + [
        Degenerate(
            c["text"],
            "candidate",
            (c.get("verdict") or {}).get("kind") or "length",
            c.get("repeat_chars"),
        )
        for c in case.candidates
        if c.get("degenerate")
    ]
    seen, unique = set(), []
    for item in found:
        if item.text.strip() and item.text.strip() not in seen:
            seen.add(item.text.strip())
            unique.append(item)
    return unique


def choose_for(
    case: PageCase,
    rules: PairRules,
    reference: str | None = None,
    image_png: bytes | None = None,
) -> Choice:
    """The chosen side of the page's pairs."""
    rejected = {r.text.strip() for r in rejected_of(case)}
    failures: list[DropReason] = []
    corrected = fields_json(case.correction)
    if corrected is not None:
        problem = _problem(corrected, rejected, rules, trusted=rules.trust_feedback)
        if problem is None:
            return Choice(corrected, "feedback", 1.0)
        failures.append(problem)
    if case.returned_clean and case.returned.strip():
        problem = _problem(case.returned, rejected, rules)
        if problem is None:
            return Choice(case.returned, "recovered" if case.caught else "served", 1.0)
        failures.append(problem)
    usable = []
    for candidate in case.candidates:
        text = candidate["text"]
        problem = "chosen_degenerate" if candidate.get("degenerate") else None
        problem = problem or _problem(text, rejected, rules)
        if problem is None:
            usable.append(text)
        else:
            failures.append(problem)
    if usable and rules.judge is not None:
        scored = [
            (s, text)
            for text in usable
            if (s := rules.judge.score(text, reference=reference, image_png=image_png)) is not None
        ]
        if not scored:
            return Choice(None, reason="judge_abstained")
        score, best = max(scored, key=lambda item: item[0])
        if score >= rules.min_score:
            return Choice(best, "candidate", score)
        return Choice(None, reason="judge_below_min")
    if usable:
        return Choice(None, reason="no_chosen")
    return Choice(None, reason=failures[0] if failures else "no_chosen")


def choose(
    record: FailureRecord,
    feedback: dict[str, Any] | None,
    candidates: list[dict[str, Any]],
    rules: PairRules,
    reference: str | None = None,
    image_png: bytes | None = None,
) -> Choice:
    """``choose_for`` the page of one failure record (its feedback applies to its page only)."""
    case = PageCase(
        page_key(record.request_id, record.page),
        record.request_id,
        record.page,
        None,
        record.page_prompt,
        {},
        live=[Degenerate(record.output, "live")],
        returned=record.final_output,
        returned_clean=record.recovered,
        candidates=candidates,
        caught=True,
    )
    if feedback and int(feedback.get("page", 1)) == record.page:
        case.correction = {f: feedback.get(f) for f in OUTPUT_FIELDS}  # type: ignore[misc]
    return choose_for(case, rules, reference, image_png)


def _problem(
    text: str, rejected: set[str], rules: PairRules, trusted: bool = False
) -> DropReason | None:
    if text.strip() in rejected:
        return "chosen_equals_rejected"
    if trusted:
        return None
    if parse_output(text) is None:
        return "chosen_not_schema"
    if degenerate(text, rules.tokenizer) is not None:
        return "chosen_degenerate"
    return None
