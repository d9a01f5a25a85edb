"""Shared fixtures: the tiny random model (fast) and the real embedded models (integration)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_lm():
    """(model, tokenizer): a 2-layer random Llama with the real SmolLM2 tokenizer, on CPU."""
    from skillkit.core.models import load_causal_lm

    return load_causal_lm("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def tiny_backend(tiny_lm):
    """An HFBackend over the tiny random model."""
    from skillkit.core.llm.hf import HFBackend

    model, tokenizer = tiny_lm
    return HFBackend(model, tokenizer, batch_size=8)


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of the real embedded SmolLM2-135M-Instruct (converted once, then cached)."""
    from skillkit.core.models import load_causal_lm

    return load_causal_lm("smollm2-135m", device="cpu")


@pytest.fixture(scope="session")
def smollm2_backend(smollm2):
    """An HFBackend over the real embedded SmolLM2."""
    from skillkit.core.llm.hf import HFBackend

    model, tokenizer = smollm2
    return HFBackend(model, tokenizer, batch_size=16)


@pytest.fixture(scope="session")
def minilm():
    """The real embedded all-MiniLM-L6-v2 sentence embedder."""
    from skillkit.core.models import load_embedder

    return load_embedder("minilm", device="cpu")
