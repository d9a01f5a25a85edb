"""Shared fixtures: the tiny random model (fast) and the real embedded models (integration)."""

from __future__ import annotations

import contextlib
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
def tiny_adapter(tmp_path_factory):
    """A peft LoRA adapter folder for the tiny model that changes it (a fresh adapter is a no-op: B = 0)."""
    from peft import LoraConfig, get_peft_model

    from skillkit.core.models import load_causal_lm

    model, _ = load_causal_lm("tiny-random", device="cpu")
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(str(folder))
    return folder


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


@pytest.fixture(scope="session")
def serve_app():
    """``serve_app(app)``: a context manager serving ``app`` on 127.0.0.1 (see :func:`running_server`)."""
    return running_server


@contextlib.contextmanager
def running_server(app, start_timeout: float = 30.0):
    """Serve an ASGI ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; yields its base URL."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + start_timeout
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        server.should_exit = True
        pytest.fail("server did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
