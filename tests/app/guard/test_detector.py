"""The loop detector: what trips, when, and what must not."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.guard import DEFAULT_CONFIG, GuardConfig, LoopDetector, scan

from .tokens import WordTokenizer, scan_text

INTRO = "Relatório anual da empresa. Os resultados foram bons.\n"


@pytest.mark.parametrize(
    ("unit", "copies", "kind"),
    [
        (" a", 40, "token_run"),
        ("the cat sat on the mat. ", 12, "ngram_loop"),
        ("| 0,00 | Total geral do mês |\n", 12, "line_loop"),
        ("Primeira linha do bloco.\nSegunda linha do bloco.\n", 8, "block_loop"),
        ("<tr><td>Nome</td><td>Valor</td><td>Data</td></tr>", 8, "inline_block"),
        (":" * 84 + "\n", 4, "line_loop"),
        ("      |                 |\n", 20, "line_loop"),
    ],
    ids=[
        "token-run",
        "ngram",
        "table-row",
        "paragraph",
        "html-one-line",
        "rule-lines",
        "empty-columns",
    ],
)
def test_exact_loops_trip_with_their_kind_and_period(unit, copies, kind):
    verdict = scan_text(INTRO + unit * copies)
    period = len(WordTokenizer().encode(unit * 2)[0]) // 2  # tokens of one copy in the stream
    assert verdict is not None
    assert (verdict.kind, verdict.period) == (kind, period)
    assert verdict.repeats < copies  # caught before the end


def test_trips_at_the_threshold_token_exactly():
    # " alfa beta gama" is a 3-token unit; it needs min_copies + 16 // 3 = 8 copies.
    tokenizer = WordTokenizer()
    ids, pieces = tokenizer.encode("começo" + " alfa beta gama" * 20)
    detector = LoopDetector()
    trips = [n for n, (i, p) in enumerate(zip(ids, pieces)) if detector.feed((i,), p)]
    assert trips == [1 + 8 * 3 - 1]  # the last token of the eighth copy
    verdict = detector.verdict
    assert verdict.onset == 1 and verdict.repeats == 8 and verdict.trip_at == 25
    assert verdict.lag == 25 - (1 + 3)  # tokens after the first copy ended


def test_long_paragraph_loop_beyond_the_token_window():
    paragraph = " ".join(f"palavra{i}" for i in range(150)) + "\n"  # ~300 tokens > max_period
    verdict = scan_text(INTRO + paragraph * 4, GuardConfig(max_period=128))
    assert verdict is not None and verdict.kind in ("line_loop", "block_loop")
    assert verdict.repeats == DEFAULT_CONFIG.copies_needed(verdict.period, "content")


def test_fuzzy_loop_with_changing_numbers():
    text = INTRO + "".join(f"<td>{i}</td>" for i in range(200))
    verdict = scan_text(text)
    assert verdict is not None and verdict.kind == "fuzzy_loop"


def test_counting_loop_needs_more_copies_than_a_drifting_one():
    # rows that differ only in their numbers, standing among their words: a statement or
    # payment schedule looks the same for dozens of rows
    row = "Parcela {} paga em 10/{:02d}/2025 no valor de R$ 150,00 conforme contrato.\n"
    counting = "".join(row.format(i, i % 12 + 1) for i in range(1, 90))
    verdict = scan_text(counting)
    needed = DEFAULT_CONFIG.fuzzy_numbers_min_copies
    assert verdict is not None and verdict.kind == "fuzzy_loop" and verdict.repeats == needed
    assert scan_text("".join(row.format(i, i % 12 + 1) for i in range(1, needed))) is None
    # copies in which one word drifts (never the same spelling twice) trip much earlier
    letters = "abcdefghij"
    drifting = "".join(
        f"O contribuinte deverá apresentar a declaração anual ao fiscal {letters[i // 10]}"
        f"{letters[i % 10]}ro da receita estadual até o fim do mês corrente.\n"
        for i in range(40)
    )
    verdict = scan_text(drifting)
    assert verdict is not None and verdict.kind == "fuzzy_loop"
    assert verdict.repeats <= DEFAULT_CONFIG.fuzzy_min_copies + 1


COUNTED = {
    "article-numbers": "Artigo {}. O contribuinte deverá apresentar a declaração.\n",
    "cjk-articles": "第{}条民事主体在民事活动中的法律地位一律平等。\n\n",
    "trailing-counter": "Casting down their golden crowns around the glassy sea; {}\n",
    "timestamps": "[00:06:{:02d}.760 --> 00:06:59.760]   End of appendix C.\n",
    "numbers-inside": "On January 10, 2015, the agency received 1 report on the child. {}\n",
}
CJK_NUMERALS = "二三四五六七八九十"


@pytest.mark.parametrize("row", COUNTED.values(), ids=COUNTED.keys())
def test_one_sentence_under_a_running_counter_trips_early(row):
    def rows(count: int) -> str:
        numbers = CJK_NUMERALS if "第" in row else range(2, 2 + count)
        return "".join(row.format(n) for n in list(numbers)[:count])

    needed = DEFAULT_CONFIG.counter_min_copies
    verdict = scan_text(INTRO + rows(needed))
    assert verdict is not None and verdict.kind == "fuzzy_loop" and verdict.repeats == needed
    assert scan_text(INTRO + rows(needed - 1)) is None


COUNTED_LOOK_ALIKES = {
    "revoked-articles": "".join(f"Art. {n}. (Revogado).\n" for n in range(10, 30)),
    "revoked-by-law": "".join(
        f"Art. {n}. (Revogado pela Lei nº 13.105, de 2015)\n" for n in range(10, 30)
    ),
    "numbered-blanks": "".join(f"{n}. ________________________________\n" for n in range(1, 30)),
    "short-items": "".join(f"Questão {n}: ( ) Sim ( ) Não\n" for n in range(1, 30)),
    "installments": "".join(f"Parcela {n:02d} de 48 - R$ 150,00\n" for n in range(1, 49)),
}


@pytest.mark.parametrize("text", COUNTED_LOOK_ALIKES.values(), ids=COUNTED_LOOK_ALIKES.keys())
def test_numbered_lines_that_are_not_one_counted_sentence_do_not_trip(text):
    assert scan_text(text) is None


def test_number_run_split_into_several_number_tokens():
    # A year run as the embedded model's BPE emits it: " 20" "2" "5" again and again. With
    # numbers folded the stream is one symbol, so the period (3) comes from the raw tokens.
    pieces = ["Invoice Number: 001"] + [" 20", "2", "5"] * 30
    ids = [0] + [1, 2, 3] * 30
    detector = LoopDetector()
    trips = [n for n, (i, p) in enumerate(zip(ids, pieces)) if detector.feed((i,), p)]
    verdict = detector.verdict
    assert verdict is not None and (verdict.kind, verdict.period) == ("ngram_loop", 3)
    assert verdict.repeats == DEFAULT_CONFIG.copies_needed(3, "numeric")
    assert trips == [verdict.trip_at - 1]


LONG_BLOCK = (
    "Vou executar agora a atualização do componente de seleção de modelos.\n"
    "Espere, a função de escrita precisa do conteúdo completo do arquivo.\n"
    "Uma verificação final: o arquivo corresponde ao que foi lido. Sim.\n"
)


def test_long_block_trips_once_its_third_copy_begins():
    assert len(LONG_BLOCK.encode()) >= DEFAULT_CONFIG.long_block_bytes
    first_line = LONG_BLOCK.split("\n")[0] + "\n"
    verdict = scan_text(INTRO + LONG_BLOCK * 2 + first_line)
    assert verdict is not None and verdict.kind == "block_loop" and verdict.repeats == 2
    ids, _ = WordTokenizer().encode(INTRO + LONG_BLOCK * 2 + first_line)
    assert verdict.trip_at == len(ids)  # at the end of that first line, not a copy later


def test_long_block_pasted_twice_is_legitimate():
    # two "vias" of the same document, then other text: no third copy, no trip
    assert scan_text(INTRO + LONG_BLOCK * 2 + "Assinado em São Paulo.\n") is None


def test_short_block_needs_a_full_third_copy():
    short = "Nome do cliente\nValor da parcela\n"
    assert len(short.encode()) < DEFAULT_CONFIG.long_block_bytes
    assert scan_text(INTRO + short * 2 + "Nome do cliente\n") is None
    period = len(WordTokenizer().encode(short)[0])
    assert scan_text(INTRO + short * DEFAULT_CONFIG.copies_needed(period, "content")) is not None


MID_LINE_UNIT = (
    "a vida é breve e o tempo passa depressa demais para todos nós, disse ele, "
    "olhando pela janela da sala"
)


def test_loop_that_begins_mid_line_counts_its_first_copy():
    # "... disse que a vida é breve ...\na vida é breve ...\na vida é breve ...\n": the
    # first copy ends a longer line and tokenizes differently (" a" vs "\na"), as with BPE
    head = "O relatório da comissão disse que "
    text = INTRO + head + MID_LINE_UNIT + "\n" + (MID_LINE_UNIT + "\n") * 2
    verdict = scan_text(text)
    assert verdict is not None and verdict.kind == "line_loop" and verdict.repeats == 3
    ids, pieces = WordTokenizer().encode(text)
    assert verdict.trip_at == len(ids)
    kept = "".join(pieces[: verdict.onset + verdict.period])  # what recovery keeps
    # one whole copy kept, up to its newline (the word tokenizer glues "\n" to the next word)
    assert kept.count(MID_LINE_UNIT) == 1 and kept.split(MID_LINE_UNIT)[1] in ("\n", "\na")
    assert scan_text(INTRO + (MID_LINE_UNIT + "\n") * 2) is None  # one copy fewer


def test_line_ending_with_the_next_line_is_not_a_loop_by_itself():
    echo = "E o coro responde: glória a Deus nas alturas e paz na terra\n"
    unit = "glória a Deus nas alturas e paz na terra\n"
    assert scan_text(INTRO + echo + unit + "Amém.\n") is None


def test_header_re_emitted_between_other_lines():
    lines = []
    for i in range(12):
        lines.append("PREFEITURA MUNICIPAL DE SÃO PAULO")
        lines.append(f"linha de conteúdo diferente número {i} com texto {i * 7}")
    verdict = scan_text("\n".join(lines) + "\n")
    assert verdict is not None and verdict.kind == "block_reemission"


ITEM_BLOCK = (
    f"004512 CERVEJA PILSEN LATA 350ML{' ' * 28}R$ 4,99\n"
    "       Desconto: LEVE 3 PAGUE 2\n"
    f"       Desconto{' ' * 40}(R$ 0,50)\n"
)

LEGITIMATE = {
    "table-empty-cells": "| Nome | CPF | Assinatura |\n|---|---|---|\n" + "|  |  |  |\n" * 12,
    "dotted-leaders": "".join(f"Capítulo {i} {'.' * 60} {i * 7}\n" for i in range(1, 15)),
    "receipt-identical-items": "CUPOM FISCAL\n" + "1 UN CAFE EXPRESSO 5,50\n" * 3 + "TOTAL 16,50\n",
    "form-blanks": "Nome: ______________________\nRG: ____________\n"
    + "São Paulo, ____ de ____________ de 20__\n",
    "refrain": "".join(
        f"Verso {n} da estrofe {n} aqui\nOutro verso diferente, o {n}º\n"
        "Glória, glória, aleluia!\nGlória, glória, aleluia!\nGlória, glória, aleluia!\n"
        for n in range(1, 5)
    ),
    "legal-list": "".join(
        f"{r} - é assegurado o direito de resposta, proporcional ao agravo;\n"
        for r in ("I", "II", "III", "IV", "V")
    ),
    "running-header": "".join(
        "DIÁRIO OFICIAL DA UNIÃO\n"
        + " ".join(f"palavra{n}x{i}" for i in range(60))
        + f"\nOutra linha da página {n} com conteúdo próprio.\nPágina {n}\n"
        for n in range(1, 6)
    ),
    "numbers-table": "\n".join(
        f"| {d:02d}/01/2024 | {d * 13 % 97},00 | 0,00 | 0,00 |" for d in range(1, 25)
    ),
    "ruled-lines": "=" * 80 + "\nRELATÓRIO\n" + "-" * 80 + "\n",
    # empty rows of a padded wide table: cells of every width, marks only, one line each
    "wide-empty-rows": "| "
    + " | ".join(f"Coluna {n:02d}" for n in range(12))
    + " |\n"
    + ("|" + "|".join(" " * (5 + 7 * n % 23) for n in range(12)) + "|\n") * 3,
    "formula-negative-spaces": "$$\\int\\!\\!\\!\\int_{D} f \\, dx \\, dy "
    + "= \\! \\! \\! / \\! \\! / \\! \\! \\! \\! / \\! \\!$$\n",
    "santo": "Santo, Santo, Santo, Senhor Deus do universo.",
    "installment-schedule": "CARNÊ DE PAGAMENTO\nCliente: Maria da Silva\n"
    + "".join(
        f"Parcela {i:02d} de 48 - Vencimento 10/{(i - 1) % 12 + 1:02d}/{2025 + (i - 1) // 12}"
        " - Valor R$ 150,00\n"
        for i in range(1, 49)
    ),
    "merged-header-cells": "| Class | Count | "
    + "triple inter-annotator mAP @ 0.5-0.95 (%) | " * 7
    + "\n|---|---|"
    + "---|" * 7
    + "\n| Caption | 22524 | 83 | 84 | 85 | 86 | 87 | 88 | 89 |\n",
    "wide-separator-row": "| "
    + " | ".join(f"Coluna {n:02d}" + " " * 20 for n in range(12))
    + " |\n|"
    + "|".join("-" * 30 for _ in range(12))
    + "|\n",
    # a PDF whose fonts map no glyph to text: every letter comes out as a code (/g72 is "e")
    "pdf-glyph-codes": "".join(
        "- " + "".join("/g3 " if c == " " else f"/g{ord(c) - 29}" for c in sentence) + "\n"
        for sentence in (
            "Enhance the performance of your database operations",
            "Earn greater return on IT projects through modernization",
            "Gain access to a worldwide source of expertise",
        )
    ),
    "payment-history-table": "".join(
        f"| {i} | 10/{(i - 1) % 12 + 1:02d}/2025 | Boleto bancário pago | R$ 150,00 |\n"
        for i in range(1, 49)
    ),
    # OCR that keeps the layout pads a receipt's rows to the page's width
    "receipt-rows-padded": "MERCADO BOA VISTA\n"
    + f"CANETA ESFEROGRAFICA AZUL BIC CRISTAL{' ' * 20}1,25 T\n" * 4
    + f"CADERNO 96 FOLHAS{' ' * 35}9,90 T\n"
    + f"TOTAL{' ' * 43}R$ 14,90\n",
    # an item printed in a block with its discount, bought six times, another item between
    "receipt-item-blocks": "ADEGA CENTRAL\nCOD DESCRICAO VALOR\n"
    + ITEM_BLOCK * 4
    + f"004618 VINHO TINTO SECO 750ML{' ' * 30}R$ 29,90\n" * 2
    + ITEM_BLOCK * 2
    + "SUBTOTAL R$ 86,70\n",
}


@pytest.mark.parametrize("text", LEGITIMATE.values(), ids=LEGITIMATE.keys())
def test_legitimate_repetition_does_not_trip(text):
    assert scan_text(text) is None


def test_a_receipts_border_read_as_letters_is_legitimate():
    # OCR reads a receipt's printed border as a run of W (holdout3/legit/003); the embedded
    # model's tokenizer writes it a letter or two a token, a unit of one letter
    from transformers import AutoTokenizer

    from app.config import EMBEDDED_MODEL
    from app.labeler import label_text

    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED_MODEL)
    receipt = (
        "LOJA CENTRAL\nTOTAL R$ 11,24\n"
        "~W~WWWWWW~XXWWWWWWWWW*WWWWWXWWWXWWWWW~XWWWW\n"
        "~  Avalie nosso atendimento!  ~\n"
        "WWWXWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW*WWW~W\n"
    )
    assert label_text(tokenizer, receipt) is None
    assert label_text(tokenizer, receipt + "W" * 400) is not None


@pytest.mark.parametrize("letter", ["W", "a", "R"])
def test_a_letter_run_past_a_lines_width_still_trips(letter):
    # a BPE model writes a letter run a few letters a token
    verdict = _feed(["Nota", " fiscal", " 123", "\n"] + [letter * 2] * 200)
    assert verdict is not None and verdict.kind == "token_run"
    assert verdict.trip_at < 4 + 110  # the run trips once it passes 200 characters


def test_a_loop_of_a_receipt_item_block_still_trips():
    verdict = scan_text("ADEGA CENTRAL\nCOD DESCRICAO VALOR\n" + ITEM_BLOCK * 20)
    assert verdict is not None and verdict.kind in ("block_loop", "line_loop")


def _feed(pieces: list[str]):
    detector = LoopDetector()
    ids = [hash(p) % 100_000 for p in pieces]
    return next((v for i, p in zip(ids, pieces) if (v := detector.feed((i,), p))), None)


def test_whitespace_runs_are_judged_per_line():
    intro = ["Relatório", " anual", ".", "\n"]
    # a page's blank area, every line padded to 100 columns: six lines are a layout
    assert _feed(intro + [" " * 100 + "\n"] * 6 + ["Fim", "\n"]) is None
    # blank lines without end, and spaces without end on one line, are loops
    newlines = _feed(intro + ["\n"] * 200)
    assert newlines is not None and newlines.trip_at < 4 + 60
    spaces = _feed(intro + ["  "] * 400)
    assert spaces is not None and spaces.trip_at < 4 + 160


def test_reset_forgets_everything():
    tokenizer = WordTokenizer()
    ids, pieces = tokenizer.encode("ab " * 40)
    detector = LoopDetector()
    for i, p in zip(ids, pieces):
        detector.feed((i,), p)
    assert detector.verdict is not None
    detector.reset()
    assert detector.verdict is None and detector.tokens_seen == 0
    assert detector.feed((ids[0],), pieces[0]) is None


@pytest.mark.parametrize("step", [2, 3, 5, 8, 13])
def test_multi_token_steps_trip_where_single_tokens_do(step):
    # An engine that falls behind hands over several tokens per step, their text as a whole
    # (it belongs to the last one): the verdict is the same, within that step.
    ids, pieces = WordTokenizer().encode(INTRO + "um dois três quatro " * 12)
    single = LoopDetector()
    for i, p in zip(ids, pieces):
        if single.feed((i,), p):
            break
    batched = LoopDetector()
    for start in range(0, len(ids), step):
        if batched.feed(tuple(ids[start : start + step]), "".join(pieces[start : start + step])):
            break
    one, many = single.verdict, batched.verdict
    assert one is not None and many is not None
    assert (one.kind, one.period, one.onset) == (many.kind, many.period, many.onset)
    assert one.trip_at <= many.trip_at < one.trip_at + step


@pytest.mark.parametrize("sizes", [(5, 1, 1), (2, 1, 3, 1), (1, 8, 1, 2), (3, 1, 1, 13)])
def test_steps_of_changing_size_keep_the_onset_of_a_loop_with_a_number(sizes):
    # vLLM under load hands over steps of one token, then several: a number token first seen
    # inside a step (no text of its own) must stay the same symbol when it comes alone, or
    # the exact run breaks there and the onset moves copies later (a rewind then kept them).
    ids, pieces = WordTokenizer().encode("Nota São Prefei 123 " * 30)
    single = scan_text("Nota São Prefei 123 " * 30)
    detector, start = LoopDetector(), 0
    for size in itertools.cycle(sizes):
        step = slice(start, start + size)
        start += size
        if detector.feed(tuple(ids[step]), "".join(pieces[step])) or start >= len(ids):
            break
    verdict = detector.verdict
    assert single is not None and verdict is not None
    assert (verdict.kind, verdict.period, verdict.onset) == (single.kind, 4, single.onset)


def test_config_validates_and_is_versioned():
    assert DEFAULT_CONFIG.version
    with pytest.raises(ValueError):
        GuardConfig(min_copies=1)
    with pytest.raises(ValueError):
        GuardConfig(fuzzy_max_miss_ratio=0.7)
    assert DEFAULT_CONFIG.copies_needed(1, "content") > DEFAULT_CONFIG.copies_needed(64, "content")


unit_tokens = st.lists(st.integers(min_value=1000, max_value=1100), min_size=1, max_size=40)


# derandomize: a random search once found a miss (the A A B A B A unit below) and made CI
# flaky; the search is now the same on every run.
@settings(max_examples=150, deadline=None, derandomize=True)
@given(prefix=st.lists(st.integers(min_value=0, max_value=999), max_size=60), unit=unit_tokens)
def test_a_unit_repeated_past_its_threshold_always_trips(prefix, unit):
    copies = DEFAULT_CONFIG.copies_needed(len(unit), "content") + 1
    stream = prefix + unit * copies
    verdict = _verdict_of_words(stream)
    assert verdict is not None
    assert verdict.trip_at <= len(stream)


def _verdict_of_words(stream: list[int]):
    """Feed token ids as words (`` w<id>``) until the detector trips; its verdict."""
    detector = LoopDetector()
    for t in stream:
        if detector.feed((t,), f" w{t}"):
            break
    return detector.verdict


@settings(max_examples=100, deadline=None)
@given(tokens=st.lists(st.integers(min_value=0, max_value=30), max_size=300))
def test_same_input_same_verdict(tokens):
    def run():
        detector = LoopDetector()
        for t in tokens:
            detector.feed((t,), f" t{t}")
        return detector.verdict

    assert run() == run()


def test_a_unit_whose_every_symbol_and_pair_recurs_inside_it_trips():
    assert _verdict_of_words([1000, 1000, 1001, 1000, 1001, 1000] * 20) is not None


def _primitive_units(alphabet: int, longest: int):
    """Every unit of 1..longest symbols over ``alphabet`` symbols that is not itself a repeat."""
    for n in range(1, longest + 1):
        for unit in itertools.product(range(1000, 1000 + alphabet), repeat=n):
            if all(unit != unit[d:] + unit[:d] for d in range(1, n) if n % d == 0):
                yield list(unit)


@pytest.mark.parametrize("alphabet, longest", [(2, 11), (3, 6)])
def test_every_unit_over_a_small_alphabet_trips(alphabet, longest):
    # Small alphabets are where every symbol and pair recurs inside the unit (table rows of
    # pipes and blanks); the pair-only opener missed 892 of the 1966 binary units up to 10.
    missed = []
    for unit in _primitive_units(alphabet, longest):
        copies = DEFAULT_CONFIG.copies_needed(len(unit), "content") + 1
        if _verdict_of_words(unit * copies) is None:
            missed.append(unit)
    assert not missed, f"{len(missed)} units never tripped, e.g. {missed[:3]}"


def test_json_escaped_line_breaks_split_across_tokens_feed_the_line_views():
    # The served model writes its page as a JSON string: its line breaks are "\n" escapes,
    # and a tokenizer may split one as "\" + "nos" (a break, then "os"). Only the line view
    # catches a long block written twice and started a third time, so it must see these
    # breaks, also when "nos" was seen before as a plain word.
    lines = [
        "os documentos sobre a mesa do diretor foram todos arquivados ontem",
        "a auditoria anual começou antes que os arquivos estivessem em ordem",
        "o relatório do último trimestre ainda não tinha sido assinado",
    ]
    pieces = ['{"text": "', "Palavras", " soltas", ":", "nos", ",", "na", ",", "no", "."]
    for line in lines * 2 + lines[:1]:
        first, *rest = line.split(" ")
        pieces += ["\\", "n" + first] + [" " + word for word in rest]
    pieces += ["\\", "n"]  # the third copy's first line ends
    vocabulary: dict[str, int] = {}
    detector = LoopDetector()
    for piece in pieces:
        if detector.feed((vocabulary.setdefault(piece, len(vocabulary)),), piece):
            break
    verdict = detector.verdict
    assert verdict is not None and verdict.kind == "block_loop" and verdict.repeats == 2


def test_a_block_printed_twice_inside_a_json_string_is_legitimate():
    # two copies of a sheet, then other text: legitimate as plain text (above), and so in
    # the served model's JSON, where every line break is an escape
    block = "\\n".join(LONG_BLOCK.strip().split("\n"))
    head = '{"header": "", "text": "Segunda via do recibo.\\n'
    text = head + block + "\\n" + block + '\\nAssinado em São Paulo."}'
    assert scan_text(text) is None


def test_cells_of_a_row_looping_past_the_row_still_trip():
    assert scan_text(INTRO + "| Nome | Idade |\n" + " | - |" * 80) is not None
    assert scan_text(INTRO + "| id | name | age |\n" + " | age |" * 80) is not None


def test_a_line_written_three_times_as_the_output_ends_trips_once_it_ends():
    # the model's own outputs (bench/guard_own_outputs.py): a line written a third time and
    # the page ends, no line break after the last copy, plain or as the served JSON; a line
    # break is a token of its own at the end of a line, as BPE writes it
    line = WordTokenizer().encode(
        "I - tiver cancelada sua naturalização, por sentença judicial, em virtude de "
        "atividade nociva ao interesse nacional"  # long enough that three copies are a loop
    )[1]
    *head, last = WordTokenizer().encode(INTRO.rstrip("\n"))[1]
    head.append(last + "\n")  # the line break ends the token before it here (".\n")
    plain = head + line + ["\n"] + line + ["\n"] + line
    json_head = ['{"', "header", '":', ' ""', ",", ' "', "text", '":', ' "']
    served = json_head + line + ["\\n"] + line + ["\\n"] + line + ['"', "}"]
    for pieces in (plain, served):
        vocabulary: dict[str, int] = {}
        ids = [vocabulary.setdefault(piece, len(vocabulary)) for piece in pieces]
        assert scan(ids, pieces, finished=False) is None  # cut at a limit: the line may go on
        verdict = scan(ids, pieces)
        assert verdict is not None and verdict.kind == "line_loop" and verdict.repeats == 3
        assert verdict.trip_at == len(ids)
    assert scan_text(INTRO + "\n".join([" ".join(line)] * 2)) is None  # twice: a duplicate


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_legitimate_repetition_without_its_last_line_break_does_not_trip(name):
    """Judged at its end, a text is judged as the same text with a final line break."""
    assert scan_text(LEGITIMATE[name].rstrip("\n")) is None


def test_marks_drifting_along_one_line_trip():
    # holdout4/003 (UniMERNet): negative spaces, one token each, in runs whose length drifts
    # (these, from the real output), between slashes; no exact run of them reaches the
    # length that trips a rule or a leader
    widths = [3, 3, 3, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 5, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 6, 5, 6]
    widths += [5, 6, 6, 8, 4, 9, 5, 6]
    ids, pieces = WordTokenizer().encode(INTRO + "$$A")
    vocabulary = dict(zip(pieces, ids))
    for width in widths:
        pieces += [" \\!"] * width + [" /"]
    detector = LoopDetector()
    for piece in pieces:
        if detector.feed((vocabulary.setdefault(piece, len(vocabulary)),), piece):
            break
    verdict = detector.verdict
    assert verdict is not None and verdict.kind == "fuzzy_loop"
    assert verdict.onset >= len(ids)


def test_a_sentence_loop_around_special_tokens_trips_as_prose():
    # holdout4/004 (a grounded caption): the special tokens' pipes made it a table row,
    # which needs 8 copies; as prose it trips by its third copy
    unit = "A trash can <|mt_start|><|mt_0124|><|mt_0283|><|mt_end|> with a hinged lid is visible. "
    verdict = scan_text(INTRO + unit * DEFAULT_CONFIG.min_copies)
    assert verdict is not None and verdict.repeats <= DEFAULT_CONFIG.min_copies
