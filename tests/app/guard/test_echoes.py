"""Loops of two copies and of varying lines: caught without tripping on their legitimate
look-alikes (two copies of a receipt, enumerations, refrains)."""

from __future__ import annotations

from .tokens import scan_text

INTRO = "Relatório da reunião do conselho municipal.\n"
SENTENCE = "O conselho aprovou por unanimidade o orçamento do próximo ano."


def test_a_sentence_written_twice_in_a_row_trips_at_its_second_copy():
    verdict = scan_text(INTRO + SENTENCE + " " + SENTENCE + " Fim")
    assert verdict is not None and verdict.repeats == 2


def test_a_short_phrase_twice_is_not_enough():
    assert scan_text(INTRO + "Muito obrigado. Muito obrigado. Até logo.\n") is None


def test_an_echo_inside_a_sentence_is_not_a_reemission():
    echo = "E o coro responde: glória a Deus nas alturas e paz na terra\n"
    assert scan_text(INTRO + echo + "glória a Deus nas alturas e paz na terra\nAmém.\n") is None


def test_a_line_repeated_with_its_middle_dropped_trips():
    start = "(1) This form of enquiry is approved by The Law Society, "
    end = "and is published by their authority."
    line, shorter = start + "the Association of County Councils " + end, start + end
    verdict = scan_text(INTRO + line + "\n" + shorter + "\n")
    assert verdict is not None and verdict.kind == "block_reemission"


def test_lines_varying_one_template_trip_as_a_fuzzy_loop():
    words = ["sizes", "shapes", "colors", "brands", "shades", "tones"]
    text = "".join(f"The collage is made up of different {w} of bottles.\n" for w in words)
    verdict = scan_text(INTRO + text)
    assert verdict is not None and verdict.kind == "fuzzy_loop"


def test_enumerations_of_the_same_clause_stay_legitimate():
    # revoked articles print the same text under each number
    items = "".join(
        f"{r} - (revogado pela Lei nº 9.876, de 1999);\n"
        for r in ("I", "II", "III", "IV", "V", "VI")
    )
    assert scan_text(INTRO + items) is None
    articles = "".join(f"Art. {n}º (Revogado).\n" for n in range(10, 20))
    assert scan_text(INTRO + articles) is None


def test_two_copies_of_a_multi_line_document_stay_legitimate():
    via = "CUPOM FISCAL\nCAFE EXPRESSO 1 UN 5,00\nTOTAL R$ 5,00\nObrigado pela preferência.\n"
    assert scan_text(INTRO + via + via + "2ª via do consumidor\n") is None


def test_on_a_page_without_text_any_repetition_trips_early():
    from app.guard import LoopDetector

    from .tokens import WordTokenizer

    ids, pieces = WordTokenizer().encode('{"text":"' + "________ " * 20)

    def trip(page_lines):
        detector = LoopDetector(page_lines=page_lines)
        return next(
            (n for n, (i, p) in enumerate(zip(ids, pieces)) if detector.feed((i,), p)), None
        )

    assert trip(None) is None  # a long rule is legitimate filler on a page of text...
    assert trip(0) is not None and trip(0) < 12  # ...not on a page with no text line


def test_more_lines_than_the_page_holds_trips_a_repeated_line():
    row = "| Café | 1 | 5,00 |\n"
    text = "Cupom\n" + row * 7
    assert scan_text(text) is None  # seven identical rows on a page that may hold them
    from app.guard import GuardConfig, LoopDetector

    from .tokens import WordTokenizer

    ids, pieces = WordTokenizer().encode(text)
    detector = LoopDetector(GuardConfig(), page_lines=4)
    verdicts = [detector.feed((i,), p) for i, p in zip(ids, pieces)]
    tripped = [v for v in verdicts if v]
    assert tripped and tripped[0].kind == "line_loop"  # the page holds 4 lines, not 8


ANSWER = (
    "Pressão alta é uma doença crônica que exige acompanhamento e tratamento contínuos.\n"
    "1. **Alimentação saudável**:\n"
    "   - Limite o sal a seis gramas por dia.\n"
    "   - Coma mais frutas e verduras.\n"
)


def test_output_starting_over_in_the_middle_of_a_line_trips():
    # the answer restarts from its first line, spliced behind a list marker (U+FFFD where
    # the stream broke), then goes on with the line that followed it the first time
    first, second, *_ = ANSWER.splitlines()
    text = ANSWER + "   - \ufffd" + first + "\n" + second + "\n"
    verdict = scan_text(text)
    assert verdict is not None and verdict.kind == "block_reemission" and verdict.repeats == 2
    assert scan_text(ANSWER + "   - \ufffd" + first + "\nOutra coisa.\n") is None


def test_a_sheet_printed_again_or_a_refrain_with_a_lead_in_is_not_a_restart():
    first, second, *_ = ANSWER.splitlines()
    assert scan_text(ANSWER + "2ª via\n" + first + "\n" + second + "\n") is None
    assert scan_text(ANSWER + "E todos cantam: " + first + "\n" + second + "\n") is None


CLAUSE = "the meaning of life, with respect to Python, is arguably to solve problems"
OTHER = "and efficiently, since its design philosophy emphasizes readability"


def test_lines_that_write_their_own_clauses_again_trip():
    # each clause comes back within its own line, interleaved with the text around it
    first = f"The {CLAUSE} elegantly, as one says, {CLAUSE} quickly {OTHER}.\n"
    second = f"Its ecosystem {OTHER} of libraries, they say, {OTHER} helps.\n"
    verdict = scan_text(INTRO + first + second)
    assert verdict is not None and verdict.kind == "block_reemission" and verdict.repeats == 2
    assert scan_text(INTRO + first + "Its ecosystem of libraries helps.\n") is None  # once


def test_one_long_name_written_twice_in_a_sentence_is_legitimate():
    name = "Conselho Nacional dos Direitos da Pessoa com Deficiência"
    text = (
        f"Art. 4º O {name} terá sede em Brasília, e os membros do {name} serão nomeados.\n"
        "Art. 5º Compete ao Conselho aprovar o seu regimento interno.\n"
        f"Art. 6º O presidente do {name} convocará as reuniões.\n"
    )
    assert scan_text(text) is None


ROW = "| DHAW20190047 | 07/12/2019 | CITIBANK TRAVEL CARD | AIRFARE DETROIT TO ST LOUIS | 463.30 |"


def test_a_table_row_misspelt_anew_row_after_row_trips():
    rows = []
    for k in range(8):
        chars = list(ROW)
        spot = 20 + 7 * k  # one letter changed, somewhere else each time
        chars[spot] = "x" if chars[spot] != "x" else "y"
        rows.append("".join(chars))
    verdict = scan_text(INTRO + ROW + "\n" + "\n".join(rows) + "\n")
    assert verdict is not None and verdict.kind == "fuzzy_loop"


def test_table_rows_that_differ_in_their_values_do_not_trip():
    names = ["ANA SOUZA", "JOSE LIMA", "RITA MELO", "LUIS REIS", "EVA COSTA", "RUI PAIVA"]
    rows = "".join(
        f"| DHAW2019004{k} | 07/12/2019 | {name} | AIRFARE DETROIT TO ST LOUIS | 463.30 |\n"
        for k, name in enumerate(names)
    )
    assert scan_text(INTRO + rows) is None
