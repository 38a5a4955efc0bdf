"""Builds the embedded model's tokenizer, processor and Qwen2.5-VL network from scratch."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.prompt import CHAT_TEMPLATE

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# White must map to zero: with CLIP's mean/std the page background becomes a large
# constant and every visual token collapses onto one vector (issue #4, attempt 2).
IMAGE_MEAN = [1.0, 1.0, 1.0]
IMAGE_STD = [0.5, 0.5, 0.5]


@dataclass(frozen=True)
class ModelSize:
    """Dimensions of the from-scratch Qwen2.5-VL."""

    text_layers: int = 4
    text_hidden: int = 256
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 768
    vision_depth: int = 4
    vision_hidden: int = 192
    vision_heads: int = 3
    vision_intermediate: int = 512
    max_positions: int = 4096


TINY = ModelSize(  # the smallest that vLLM's CPU attention takes (head size 32)
    text_layers=1,
    text_hidden=64,
    text_heads=2,
    text_kv_heads=1,
    text_intermediate=64,
    vision_depth=1,
    vision_hidden=32,
    vision_heads=2,
    vision_intermediate=64,
    max_positions=2048,
)


def build_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained on ``texts``, with Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )


def build_processor(tokenizer, min_pixels: int = 28 * 28, max_pixels: int = 448 * 448):
    """Qwen2.5-VL's processor around ``tokenizer``, normalising white to zero."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )
    # Unused, but the processor class requires one.
    video_processor = Qwen2VLVideoProcessor(image_mean=IMAGE_MEAN, image_std=IMAGE_STD)
    tokenizer.chat_template = CHAT_TEMPLATE
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(
    tokenizer, size: ModelSize = ModelSize(), seed: int = 0, tie_embeddings: bool = True
):
    """A randomly initialised Qwen2.5-VL sized by ``size`` for ``tokenizer``."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = tokenizer.convert_tokens_to_ids
    head_dim = size.text_hidden // size.text_heads
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": size.text_hidden,
            "intermediate_size": size.text_intermediate,
            "num_hidden_layers": size.text_layers,
            "num_attention_heads": size.text_heads,
            "num_key_value_heads": size.text_kv_heads,
            "max_position_embeddings": size.max_positions,
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": _mrope_section(head_dim),
            },
        },
        vision_config={
            "depth": size.vision_depth,
            "hidden_size": size.vision_hidden,
            "intermediate_size": size.vision_intermediate,
            "num_heads": size.vision_heads,
            "out_hidden_size": size.text_hidden,
            "fullatt_block_indexes": list(range(size.vision_depth)),
            "window_size": 112,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=tie_embeddings,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids("<|im_end|>")
    model.generation_config.pad_token_id = ids("<|endoftext|>")
    model.generation_config.do_sample = False
    return model


def _mrope_section(head_dim: int) -> list[int]:
    """Split of the rotary half-dimension over (time, height, width), Qwen's 1:1.5:1.5."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]
