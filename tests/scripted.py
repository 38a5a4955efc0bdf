"""Qwen2.5-VL models with arranged weights whose output is known in advance, for tests and
benchmarks that need a real model to loop (or not) on cue.

Every transformer layer is silenced (zero output projections), so the last hidden state is
the current token's own (normalised, random) embedding, and the output head maps each
token's embedding to a chosen successor. Greedy decoding then follows the successor map:
a cycle loops forever, a chain ending in ``<|im_end|>`` answers and stops. Everything else
(processor, vision tower, generation loop, streaming) is the real transformers stack.
"""

from __future__ import annotations

from pathlib import Path

from training.model.architecture import (
    TINY,
    ModelSize,
    build_model,
    build_processor,
    build_tokenizer,
)

CORPUS = [
    "Olá mundo, ação e coração. Prefeitura Municipal de São Paulo, Diário Oficial.",
    '{"header": "", "margin": "", "footer": "", "text": "Nota fiscal nº 123"}',
    "| Item | Qtd | Valor |\n|---|---|---|\n| Café | 1 | 5,00 |\n",
    "Transcreva o documento da imagem. Responda somente com um objeto JSON.",
] * 20
END = "<|im_end|>"
PROMPT_END = "\u010a"  # byte-level "\n": the last token of the chat prompt


def save_random_model(path: Path, seed: int = 0, size: ModelSize = TINY) -> Path:
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    build_processor(tokenizer).save_pretrained(path)
    build_model(tokenizer, size, seed=seed).save_pretrained(path)
    return path


def save_scripted_model(
    path: Path,
    successors: dict[str, str],
    second_choices: dict[str, str] | None = None,
    size: ModelSize = TINY,
) -> Path:
    """A model whose greedy next token after token ``a`` is ``successors[a]`` (the chat
    prompt's last token counts as ``PROMPT_END``); ``second_choices`` name the runner-up,
    which a recovery that bans the first choice will get."""
    import torch

    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    processor = build_processor(tokenizer)
    model = build_model(tokenizer, size, seed=1, tie_embeddings=False)
    ids = tokenizer.convert_tokens_to_ids
    text = model.model.language_model
    with torch.no_grad():
        for layer in text.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = text.embed_tokens.weight
        embed.copy_(torch.nn.functional.normalize(torch.randn_like(embed), dim=-1))
        head = torch.zeros_like(embed)
        for a, b in successors.items():
            head[ids(b)] += embed[ids(a)] * 10
        for a, b in (second_choices or {}).items():
            head[ids(b)] += embed[ids(a)] * 8
        model.lm_head.weight.copy_(head)
    processor.save_pretrained(path)
    model.save_pretrained(path)
    return path


def cycle(tokens: list[str]) -> dict[str, str]:
    """Successors that start ``tokens`` after the prompt and repeat them forever."""
    chain = {PROMPT_END: tokens[0]}
    chain.update(zip(tokens, tokens[1:] + tokens[:1]))
    return chain


def chain(tokens: list[str]) -> dict[str, str]:
    """Successors that answer ``tokens`` once (all distinct) and stop."""
    assert len(set(tokens)) == len(tokens), "a chain must not repeat a token"
    steps = [PROMPT_END, *tokens, END]
    return dict(zip(steps, steps[1:]))


def vocabulary() -> list[str]:
    """Tokens of the scripted models' tokenizer that decode on their own to printable text
    (no special tokens, newlines or lone UTF-8 bytes): material for chains and cycles."""
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    special = set(tokenizer.all_special_tokens)
    usable = []
    for token, index in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        text = tokenizer.decode([index])
        if token in special or not text.strip() or "\ufffd" in text or not text.isprintable():
            continue
        usable.append(token)
    return usable
