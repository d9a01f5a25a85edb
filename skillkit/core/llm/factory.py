"""Build a backend from a short description (used by configs and the CLI)."""

from __future__ import annotations

from skillkit.core.llm.base import LLMBackend
from skillkit.core.llm.openai_compat import OpenAICompatibleBackend


def make_backend(kind: str = "hf", model: str = "smollm2-135m", **options: object) -> LLMBackend:
    """Create an LLM backend: ``hf`` (default), ``vllm`` or ``openai`` (``model`` is then the served name).

    Options are passed to the backend: ``dtype``, ``device``, ``batch_size`` for ``hf``;
    ``base_url``, ``api_key`` for ``openai``; vLLM engine arguments for ``vllm``.
    """
    # torch and transformers load only when an hf or vllm backend is made
    if kind == "hf":
        from skillkit.core.llm.hf import HFBackend

        return HFBackend.from_pretrained(model, **options)  # type: ignore[arg-type]
    if kind == "vllm":
        from skillkit.core.llm.vllm_backend import VLLMBackend

        return VLLMBackend(model, **options)
    if kind == "openai":
        return OpenAICompatibleBackend(model=model, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown backend {kind!r}: use hf, vllm or openai")
