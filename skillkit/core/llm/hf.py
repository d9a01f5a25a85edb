"""Batched generation with Hugging Face transformers: left padding, KV cache, chat templates."""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import torch

from skillkit.core.llm.base import (
    Completion,
    LLMBackend,
    Request,
    SamplingParams,
    StreamUpdate,
    normalize_request,
    request_schema,
)
from skillkit.core.llm.guided import GrammarMasks, guidance_tokenizer
from skillkit.core.models import load_causal_lm

if TYPE_CHECKING:
    from llguidance import LLTokenizer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def render_prompt(tokenizer: PreTrainedTokenizerBase, request: Request) -> str:
    """Render a request to the exact prompt text the model sees (chat template for chats)."""
    normalized = normalize_request(request)
    if isinstance(normalized, str):
        return normalized
    messages = [m.model_dump() for m in normalized]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask (to -inf) the tokens outside the smallest set whose probability mass reaches ``top_p``."""
    if top_p >= 1.0:
        return logits
    sorted_logits, sorted_idx = torch.sort(logits, descending=True, dim=-1)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    remove = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, sorted_idx, sorted_logits)


_CACHE_KWARG: dict[type, str] = {}


def _accepts(model: torch.nn.Module, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


def _cache_kwarg(model: torch.nn.Module) -> str:
    """transformers 5 renamed ``past_key_values`` to ``cache``; support both."""
    return "cache" if _accepts(model, "cache") else "past_key_values"


def _cache_of(output: object) -> object:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def _finish(decode: Generator[object, None, list[Completion]]) -> list[Completion]:
    """Run a decode generator to its end and return its completions."""
    while True:
        try:
            next(decode)
        except StopIteration as finished:
            return finished.value


class HFBackend(LLMBackend):
    """Generation with a transformers causal LM, many requests per forward pass.

    Requests are tokenized with left padding and decoded together with the KV cache; each step
    also records the log-prob of the sampled token (temperature 1), which costs one
    ``log_softmax`` over the last position only. ``batch_size`` caps rows per forward pass.
    Rows with a JSON schema get their logits masked to the grammar's allowed tokens each step
    (rows without one are untouched; a batch without any skips the masking entirely).
    """

    name = "hf"

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 32,
        max_prompt_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_ids = self._eos_ids()
        self._guidance_tokenizer: LLTokenizer | None = None

    @classmethod
    def from_pretrained(
        cls, name_or_path: str = "smollm2-135m", dtype: str | None = None, device: str | None = None,
        batch_size: int = 32,
    ) -> HFBackend:
        """Load a model by name (see ``skillkit.core.models.load_causal_lm``) and wrap it."""
        model, tokenizer = load_causal_lm(name_or_path, dtype=dtype, device=device)
        return cls(model, tokenizer, batch_size=batch_size)

    def _eos_ids(self) -> set[int]:
        ids = set()
        for value in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    @property
    def device(self) -> torch.device:
        """Device of the wrapped model."""
        return next(self.model.parameters()).device

    def _grammar_masks(self, schemas: list[dict | None]) -> GrammarMasks | None:
        if all(s is None for s in schemas):
            return None
        if self._guidance_tokenizer is None:
            self._guidance_tokenizer = guidance_tokenizer(self.tokenizer, self.model.config.vocab_size, self.eos_ids)
        return GrammarMasks(self._guidance_tokenizer, schemas)

    def render(self, request: Request) -> str:
        """Prompt text for one request."""
        return render_prompt(self.tokenizer, request)

    def encode_prompts(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of rendered prompts (no extra special tokens; left-truncated when too long)."""
        ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        if self.max_prompt_tokens is not None:
            ids = [row[-self.max_prompt_tokens:] for row in ids]
        return ids

    def generate(self, requests: list[Request], sampling: SamplingParams | None = None) -> list[Completion]:
        """Generate ``sampling.n`` completions per request (request-major order)."""
        sampling = sampling or SamplingParams()
        prompts = [self.render(r) for r in requests]
        prompt_ids = self.encode_prompts(prompts)
        schemas = [request_schema(r, sampling) for r in requests]
        rows = [(i, s) for i in range(len(requests)) for s in range(sampling.n)]
        # Similar lengths in one batch waste less padding; results are put back in request order.
        order = sorted(range(len(rows)), key=lambda k: -len(prompt_ids[rows[k][0]]))
        generator = self._generator(sampling)
        results: list[Completion | None] = [None] * len(rows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            batch = [prompt_ids[rows[k][0]] for k in chunk]
            masks = self._grammar_masks([schemas[rows[k][0]] for k in chunk])
            for k, completion in zip(chunk, _finish(self._decode(batch, sampling, generator, masks))):
                completion.request_index, completion.sample_index = rows[k]
                results[k] = completion
        return [c for c in results if c is not None]

    def stream(self, request: Request, sampling: SamplingParams | None = None) -> Iterator[StreamUpdate]:
        """Generate ``sampling.n`` completions of one request, yielding every sample's tokens after each
        decode step; the same tokens as ``generate([request], sampling)``."""
        sampling = sampling or SamplingParams()
        prompt = self.encode_prompts([self.render(request)])[0]
        schema = request_schema(request, sampling)
        generator = self._generator(sampling)
        done: list[Completion] = []
        for start in range(0, sampling.n, self.batch_size):
            size = min(self.batch_size, sampling.n - start)
            decode = self._decode([prompt] * size, sampling, generator, self._grammar_masks([schema] * size))
            while True:
                try:
                    tokens = next(decode)
                except StopIteration as finished:
                    chunk = finished.value
                    break
                yield StreamUpdate([c.token_ids for c in done] + [list(t) for t in tokens])
            for index, completion in enumerate(chunk, start):
                completion.sample_index = index
            done += chunk
        yield StreamUpdate([c.token_ids for c in done], done)

    def _generator(self, sampling: SamplingParams) -> torch.Generator | None:
        if sampling.greedy:
            return None
        generator = torch.Generator(device=self.device)
        generator.manual_seed(sampling.seed if sampling.seed is not None else torch.seed() % (2**63))
        return generator

    @torch.no_grad()
    def _decode(
        self, batch: list[list[int]], sampling: SamplingParams, generator: torch.Generator | None,
        masks: GrammarMasks | None = None,
    ) -> Generator[list[list[int]], None, list[Completion]]:
        """Decode one batch, yielding the rows' tokens (live lists) after every step; returns the completions."""
        device = self.device
        pad_id = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            if ids:
                input_ids[row, width - len(ids):] = torch.tensor(ids)
                attention[row, width - len(ids):] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)

        out = self._forward(input_ids, attention, positions, None)
        past = _cache_of(out)
        next_logits = out.logits[:, -1, :]
        position = positions[:, -1:]

        n_rows = len(batch)
        tokens: list[list[int]] = [[] for _ in range(n_rows)]
        logprobs: list[list[float]] = [[] for _ in range(n_rows)]
        finish: list[str | None] = [None] * n_rows
        texts: list[str | None] = [None] * n_rows
        alive = [True] * n_rows  # kept on the host: one device->host copy per step, none host->device
        alive_mask = torch.ones((n_rows, 1), dtype=torch.long, device=device)
        pad = torch.full((n_rows,), pad_id, dtype=torch.long, device=device)
        stop_tail = max((len(s) for s in sampling.stop), default=0)

        for _ in range(sampling.max_new_tokens):
            logits = next_logits.float()
            allowed = masks.mask(logits, alive) if masks is not None else logits
            if sampling.greedy:
                chosen = allowed.argmax(dim=-1)
            else:
                scaled = top_p_filter(allowed / sampling.temperature, sampling.top_p)
                chosen = torch.multinomial(torch.softmax(scaled, dim=-1), 1, generator=generator).squeeze(-1)
            chosen = torch.where(alive_mask[:, 0].bool(), chosen, pad)
            chosen_lp = logits.gather(-1, chosen[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
            # token ids are < 2**24, exact in float64: one transfer brings ids and log-probs together
            host = torch.stack([chosen.double(), chosen_lp.double()]).tolist()
            changed = False
            for row in range(n_rows):
                if not alive[row]:
                    continue
                token = int(host[0][row])
                tokens[row].append(token)
                logprobs[row].append(host[1][row])
                if token in self.eos_ids:
                    finish[row] = "stop"
                elif masks is not None:
                    masks.advance(row, token)
                if stop_tail and finish[row] is None:
                    text = self._stop_text(tokens[row], sampling.stop, stop_tail)
                    if text is not None:
                        texts[row], finish[row] = text, "stop"
                if finish[row] is not None:
                    alive[row], changed = False, True
            yield tokens
            if not any(alive):
                break
            if changed:
                alive_mask = torch.tensor(alive, dtype=torch.long, device=device)[:, None]
            attention = torch.cat([attention, alive_mask], dim=-1)
            position = position + 1
            out = self._forward(chosen[:, None], attention, position, past)
            past = _cache_of(out)
            next_logits = out.logits[:, -1, :]

        completions = []
        for row in range(n_rows):
            text = texts[row]
            if text is None:
                ids = [t for t in tokens[row] if t not in self.eos_ids]
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
            completions.append(Completion(
                text=text, token_ids=tokens[row], logprobs=logprobs[row],
                finish_reason=finish[row] or "length", prompt_token_ids=batch[row],
            ))
        return completions

    def _forward(self, input_ids: torch.Tensor, attention: torch.Tensor, positions: torch.Tensor, cache: object):
        """One cached forward pass returning only the last position's logits."""
        kwargs = {_CACHE_KWARG.setdefault(type(self.model), _cache_kwarg(self.model)): cache}
        if _accepts(self.model, "logits_to_keep"):
            kwargs["logits_to_keep"] = 1
        return self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                          use_cache=True, **kwargs)

    def _stop_text(self, token_ids: list[int], stops: list[str], tail_chars: int) -> str | None:
        """The text cut before the first stop string, or None when no stop string occurs yet."""
        tail = self.tokenizer.decode(token_ids[-(tail_chars + 8):], skip_special_tokens=True)
        if not any(s in tail for s in stops):
            return None
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        return text[:cut] if cut >= 0 else None
