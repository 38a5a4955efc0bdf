"""Loads a model folder for training and evaluation, in the dtype the work is done in.

Released weights are stored in bfloat16; transformers 5 loads a folder in its stored dtype
unless told otherwise, and training and CPU decoding want float32.
"""

from __future__ import annotations

from pathlib import Path


def load_processor(path: str | Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(path, local_files_only=True)


def load_model(path: str | Path, dtype: str = "float32"):
    """The model of ``path`` with its parameters in ``dtype`` (float32 unless asked)."""
    import torch
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(
        path, local_files_only=True, dtype=getattr(torch, dtype)
    )
