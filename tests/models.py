"""Tiny Qwen2.5-VL models for tests, built offline in seconds.

``random_model`` has random weights: it babbles and loops, as the issue wants.
``looping_model`` has *crafted* weights so that a test knows exactly what it will say: every
transformer layer is silenced (zero output projections), so the last hidden state is the
current token's own embedding, and the output head maps each token's embedding to the
next token of a fixed cycle. The engine, processor, generation loop and streaming are all
the real transformers ones; only the weights are arranged.
"""

from __future__ import annotations

from pathlib import Path

import torch

from training.architecture import TINY, build_model, build_processor, build_tokenizer

CORPUS = [
    "Olá mundo, ação e coração. Prefeitura Municipal de São Paulo, Diário Oficial.",
    '{"header": "", "margin": "", "footer": "", "text": "Nota fiscal nº 123"}',
    "| Item | Qtd | Valor |\n|---|---|---|\n| Café | 1 | 5,00 |\n",
    "Transcreva o documento da imagem. Responda somente com um objeto JSON.",
] * 20


def save_random_model(path: Path, seed: int = 0) -> Path:
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    processor = build_processor(tokenizer)
    model = build_model(tokenizer, TINY, seed=seed)
    processor.save_pretrained(path)
    model.save_pretrained(path)
    return path


def save_looping_model(path: Path, cycle: list[str], escape: bool = True) -> Path:
    """A model whose greedy output is ``cycle`` (whole tokens) repeated forever. With
    ``escape``, the second choice after the cycle's last token is the end of the answer,
    so a recovery that bans re-entering the cycle ends cleanly."""
    tokenizer = build_tokenizer(CORPUS, vocab_size=400)
    processor = build_processor(tokenizer)
    model = build_model(tokenizer, TINY, seed=1, tie_embeddings=False)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in cycle]
    assert all(isinstance(i, int) and i != tokenizer.unk_token_id for i in ids), cycle
    text = model.model.language_model
    with torch.no_grad():
        for layer in text.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = text.embed_tokens.weight
        embed.copy_(torch.nn.functional.normalize(torch.randn_like(embed), dim=-1))
        head = torch.zeros_like(embed)
        start = tokenizer.convert_tokens_to_ids("\u010a")  # "\n" ends the chat prompt
        successor = {start: ids[0]}
        for a, b in zip(ids, ids[1:] + ids[:1]):
            successor[a] = b
        for a, b in successor.items():
            head[b] += embed[a] * 10
        if escape:
            eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
            head[eos] += embed[ids[-1]] * 8
        model.lm_head.weight.copy_(head)
    processor.save_pretrained(path)
    model.save_pretrained(path)
    return path
