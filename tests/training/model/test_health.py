"""The vision health check tells a working vision tower from a collapsed one (issue #4)."""

from __future__ import annotations

import json

import pytest
import torch

from training.cli import main as training_main
from training.model.health import probe_samples, vision_health

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(random_model):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(random_model, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(random_model, local_files_only=True)
    return processor, model


def test_probe_is_fixed():
    first, second = probe_samples(3), probe_samples(3)
    assert [s.target for s in first] == [s.target for s in second]
    assert len({s.target for s in first}) == 3


def test_random_tower_still_tells_images_apart(tiny):
    processor, model = tiny
    health = vision_health(processor, model, probe_samples(4))
    assert not health["collapsed"]
    assert health["pooled_cosine"] < 0.99 and health["image_specific"] > 0.01
    assert health["visual_token_norm"] > 0


def test_collapsed_tower_is_flagged(tiny):
    processor, model = tiny
    # What the collapse looks like: the merger's last layer ignores its input and emits
    # one shared vector for every visual token.
    last = model.model.visual.merger.mlp[-1]
    saved = last.weight.detach().clone(), last.bias.detach().clone()
    try:
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(0.5)
        health = vision_health(processor, model, probe_samples(4))
    finally:
        with torch.no_grad():
            last.weight.copy_(saved[0])
            last.bias.copy_(saved[1])
    assert health["collapsed"] and health["pooled_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert health["image_specific"] < 0.01


def test_health_command_prints_json(random_model, capsys):
    assert training_main(["health", "--model", str(random_model), "--probe", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) == {"pooled_cosine", "image_specific", "visual_token_norm", "collapsed"}
