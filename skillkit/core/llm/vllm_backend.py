"""Generation with vLLM (the `gpu` extra): same interface as HFBackend, much faster on a GPU."""

from __future__ import annotations

from typing import Any

from skillkit.core.llm.base import (
    Completion,
    LLMBackend,
    Request,
    SamplingParams,
    normalize_request,
    request_schema,
)
from skillkit.core.llm.guided import closed_objects
from skillkit.core.llm.hf import render_prompt
from skillkit.core.models import resolve_causal_lm_path


class VLLMBackend(LLMBackend):
    """Wraps ``vllm.LLM``. ``model`` is a skillkit name (``smollm2-135m`` uses the safetensors cache),
    a local folder or a Hugging Face id; ``engine_args`` go to ``vllm.LLM``.

    vLLM is imported lazily, so this module imports everywhere but the backend only runs where
    vLLM is installed (Linux + CUDA). JSON schemas use vLLM's guided decoding.
    """

    name = "vllm"

    def __init__(self, model: str = "smollm2-135m", **engine_args: Any) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ImportError("VLLMBackend needs vLLM: pip install 'skillkit[gpu]' (Linux with CUDA)") from exc
        self._vllm = vllm
        engine_args.setdefault("dtype", "bfloat16")
        self.llm = vllm.LLM(model=resolve_causal_lm_path(model), **engine_args)
        self.tokenizer = self.llm.get_tokenizer()

    def _sampling(self, sampling: SamplingParams, json_schema: dict[str, Any] | None) -> Any:
        guided: dict[str, Any] = {}
        if json_schema is not None:
            schema = closed_objects(json_schema)
            try:  # vLLM >= 0.11 renamed guided decoding to structured outputs
                from vllm.sampling_params import StructuredOutputsParams

                guided["structured_outputs"] = StructuredOutputsParams(json=schema)
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                guided["guided_decoding"] = GuidedDecodingParams(json=schema)
        return self._vllm.SamplingParams(
            n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens, stop=sampling.stop or None, seed=sampling.seed, logprobs=1,
            **guided,
        )

    def generate(self, requests: list[Request], sampling: SamplingParams | None = None) -> list[Completion]:
        """Generate ``sampling.n`` completions per request (request-major order)."""
        sampling = sampling or SamplingParams()
        prompts = [render_prompt(self.tokenizer, normalize_request(r)) for r in requests]
        params = [self._sampling(sampling, request_schema(r, sampling)) for r in requests]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        completions = []
        for request_index, output in enumerate(outputs):
            for sample_index, choice in enumerate(output.outputs):
                token_ids = list(choice.token_ids)
                logprobs = [float(step[tok].logprob) for tok, step in zip(token_ids, choice.logprobs or [])]
                completions.append(Completion(
                    text=choice.text, token_ids=token_ids, logprobs=logprobs,
                    finish_reason="stop" if choice.finish_reason == "stop" else "length",
                    request_index=request_index, sample_index=sample_index,
                    prompt_token_ids=list(output.prompt_token_ids or []),
                ))
        return completions
