"""Model names, the GGUF -> safetensors cache, and the real embedded models."""

from __future__ import annotations

import json

import pytest

from skillkit.core import models
from skillkit.core.models import UnknownModelError, load_causal_lm, load_embedder


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownModelError) as exc:
        load_causal_lm("no-such-model")
    message = str(exc.value)
    assert "\n" not in message and "smollm2-135m" in message and "tiny-random" in message
    with pytest.raises(UnknownModelError, match="minilm"):
        load_embedder("nope")


def test_tiny_random_is_small_and_uses_the_real_tokenizer(tiny_lm):
    model, tokenizer = tiny_lm
    assert model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tokenizer) == 49152
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    assert "<|im_start|>" in tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)


def test_corrupt_cache_is_detected(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path))
    folder = models.smollm2_tokenizer_dir()
    marker = json.loads((folder / models.CACHE_MARKER).read_text())
    source = models._gguf_path()
    assert models._cache_is_valid(folder, source)
    victim = folder / sorted(marker["files"])[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert not models._cache_is_valid(folder, source)
    rebuilt = models.smollm2_tokenizer_dir()
    assert models._cache_is_valid(rebuilt, source)
    victim.write_bytes(b"")  # a truncated file is caught by its size
    assert not models._cache_is_valid(folder, source)


@pytest.mark.integration
def test_real_embedded_models_load_and_work(smollm2_backend, minilm):
    from skillkit.core.llm.base import SamplingParams

    out = smollm2_backend.generate([[{"role": "user", "content": "What is 2+2?"}]],
                                   SamplingParams(temperature=0, max_new_tokens=16))[0]
    assert "4" in out.text
    vectors = minilm.encode(["push the box onto the target", "move the box to the goal square", "send an email"],
                            normalize_embeddings=True)
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
