"""Second-stage rerankers: a cross-encoder built on the embedded MiniLM, and three LLM rankers.

No pretrained cross-encoder ships offline, so :class:`CrossEncoderReranker` is the MiniLM encoder
with a fresh scoring head, trained by :mod:`retriever.train_reranker`. Its score is the head's
logit plus a learned multiple of the first-stage (bi-encoder) score, so an untrained head leaves
the dense order almost unchanged and training learns a correction on top of it. That prior is
z-normalised over each query's candidates (``prior_norm="zscore"``): first stages score on their
own scales (MiniLM cosines spread ~0.1 over a query's candidates, a Margin-MSE bi-encoder 20 times
more), and a raw prior learned on one first stage swamps the head under another.

:class:`LLMReranker` asks a causal LM (default the embedded SmolLM2) whether a skill fits the
query and scores ``logit("yes") - logit("no")`` for the first answer token.
:class:`QueryLikelihoodReranker` scores a skill by how likely a causal LM finds the query after
reading it (UPR, "Improving Passage Retrieval with Zero-Shot Question Generation", Sachan et al.
2022): no training, so a ranking signal that does not come from the dense prior.
:class:`EndpointJudgeReranker` asks any OpenAI-compatible server the yes/no question: the teacher
for a user who serves a larger model (vLLM, a hosted API, ``skillkit serve-llm``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from retriever.docs import RouterDoc, beside_library
from skillkit.core.fileio import atomic_directory, atomic_write_text
from skillkit.core.models import load_causal_lm, resolve_embedder_path

RERANKER_MARKER = "reranker.json"


class Reranker(Protocol):
    """Anything that scores candidate skills for a query (higher is better)."""

    def score(self, query: str, docs: Sequence[RouterDoc], prior: np.ndarray | None = None) -> np.ndarray:
        """One score per doc; ``prior`` holds the first-stage cosine of each doc when known."""
        ...


def measured_shortfall(reranker: Any, encoder_name: str) -> str | None:
    """Why ``auto`` routing should not pay for ``reranker``: its recorded held-out check (``meta["validation"]``,
    written by ``skillkit router train-reranker --queries``), made behind a dense stage named ``encoder_name``,
    found it no better than that stage: a Hit@1 no higher (a tie in first places, even with a slightly higher
    MRR@10, is noise on the few queries held out and does not pay for 0.4-0.8 s a query).

    None when the check found it better, or when there is no record for this dense stage to go by.
    """
    meta = getattr(reranker, "meta", None)
    check = meta.get("validation") if isinstance(meta, dict) else None
    if not isinstance(check, dict) or check.get("encoder") != encoder_name:
        return None
    dense, reranked = check["dense"], check["reranked"]
    if reranked["hit@1"] > dense["hit@1"]:
        return None
    return (f"on its {check['queries']} held-out labelled queries the reranker did not beat the dense stage "
            f"(Hit@1 {reranked['hit@1']:.0%} vs {dense['hit@1']:.0%}, MRR@10 {reranked['mrr@10']:.3f} vs "
            f"{dense['mrr@10']:.3f})")


def zscore(scores: np.ndarray) -> np.ndarray:
    """Scores minus their mean, over their standard deviation (all zeros when they are all equal)."""
    scores = np.asarray(scores, np.float64)
    std = scores.std()
    if scores.size == 0 or std < 1e-12:
        return np.zeros_like(scores, np.float32)
    return ((scores - scores.mean()) / std).astype(np.float32)


def listwise_loss(scores: Any, mask: Any | None = None) -> Any:
    """Softmax cross-entropy with the positive in column 0: ``-log softmax(scores)[:, 0]``, batch mean.

    ``mask`` (bool, same shape) marks real candidates; padded columns are ignored.
    """
    import torch

    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return -torch.log_softmax(scores, dim=-1)[:, 0].mean()


def pointwise_loss(scores: Any, mask: Any | None = None) -> Any:
    """Binary cross-entropy with label 1 for column 0 and 0 for the others (the ablation)."""
    import torch

    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    losses = torch.nn.functional.binary_cross_entropy_with_logits(scores, labels, reduction="none")
    if mask is None:
        return losses.mean()
    return (losses * mask).sum() / mask.sum()


def _torch_module() -> Any:
    import torch

    class CrossEncoderModule(torch.nn.Module):
        """BERT encoder over ``[CLS] query [SEP] doc [SEP]``, mean pooled, then a linear head."""

        def __init__(self, bert: Any, prior_weight: float) -> None:
            super().__init__()
            self.bert = bert
            self.head = torch.nn.Linear(bert.config.hidden_size, 1)
            torch.nn.init.normal_(self.head.weight, std=0.02)
            torch.nn.init.zeros_(self.head.bias)
            self.prior_weight = torch.nn.Parameter(torch.tensor(float(prior_weight)))

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any | None = None,
                    prior: Any | None = None) -> Any:
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            logits = self.head(pooled).squeeze(-1)
            if prior is not None:
                logits = logits + self.prior_weight * prior
            return logits

    return CrossEncoderModule


class CrossEncoderReranker:
    """Cross-encoder reranker on MiniLM weights with a scoring head (train it before relying on it).

    Build a fresh one with :meth:`from_base` (``base="minilm"`` or any BERT-style folder/id) or load
    a trained one with :meth:`load`. ``use_prior`` adds ``prior_weight * prior`` from the first stage,
    where the prior is the first-stage score z-normalised over the query's candidates
    (``prior_norm="zscore"``, see :meth:`prepare_prior`) or, for rerankers saved before that, the
    raw cosine (``"none"``).
    """

    def __init__(self, module: Any, tokenizer: Any, max_length: int = 128, use_prior: bool = True,
                 device: str = "cpu", meta: dict[str, Any] | None = None, prior_norm: str = "zscore") -> None:
        if prior_norm not in ("zscore", "none"):
            raise ValueError(f"prior_norm must be 'zscore' or 'none', got {prior_norm!r}")
        self.module = module.to(device)
        self.module.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.use_prior = use_prior
        self.device = device
        self.meta = dict(meta or {})
        self.prior_norm = prior_norm
        self.batch_size = 32

    def prepare_prior(self, first_stage: Sequence[float] | np.ndarray) -> np.ndarray:
        """One query's first-stage scores over its candidates as the prior this reranker was trained on."""
        values = np.asarray(first_stage, np.float32)
        return zscore(values) if self.prior_norm == "zscore" else values

    @classmethod
    def from_base(cls, base: str = "minilm", max_length: int = 128, use_prior: bool = True,
                  prior_weight: float = 1.0, device: str = "cpu", seed: int = 0) -> CrossEncoderReranker:
        """A new (untrained) reranker: the base encoder's transformer plus a randomly initialised head.
        ``prior_weight`` starts at 1: a z-scored prior spreads a query's candidates over a few logits."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = resolve_embedder_path(base)
        bert = AutoModel.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            module = _torch_module()(bert, prior_weight)
        finally:
            torch.random.set_rng_state(state)
        return cls(module, tokenizer, max_length, use_prior, device, {"base": base, "trained": False})

    def encode_pairs(self, queries: Sequence[str], texts: Sequence[str]) -> dict[str, Any]:
        """Tokenise (query, doc text) pairs within ``max_length``: the longer side is cut first, so a
        short query stays whole and a query longer than the budget (an app screen) still fits."""
        batch = self.tokenizer(list(queries), list(texts), truncation="longest_first", max_length=self.max_length,
                               padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward_texts(self, queries: Sequence[str], texts: Sequence[str], prior: Any | None = None) -> Any:
        """Raw torch scores for pairs (keeps the graph: used by training)."""
        batch = self.encode_pairs(queries, texts)
        return self.module(**batch, prior=prior if self.use_prior else None)

    def score(self, query: str, docs: Sequence[RouterDoc], prior: np.ndarray | None = None) -> np.ndarray:
        """Scores for ``docs`` against ``query`` (higher is better)."""
        import torch

        if not docs:
            return np.zeros(0, np.float32)
        texts = [d.to_text() for d in docs]
        if prior is not None:
            prior = self.prepare_prior(prior)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start:start + self.batch_size]
                p = None
                if prior is not None:
                    p = torch.as_tensor(np.asarray(prior[start:start + len(chunk)], np.float32), device=self.device)
                out.append(self.forward_texts([query] * len(chunk), chunk, p).float().cpu().numpy())
        return np.concatenate(out)

    def save(self, path: str | Path) -> None:
        """Write the reranker to a folder atomically (transformer, tokenizer, head, config)."""
        import torch

        with atomic_directory(path) as tmp:
            self.module.bert.save_pretrained(str(tmp / "encoder"))
            self.tokenizer.save_pretrained(str(tmp / "encoder"))
            torch.save({"head": self.module.head.state_dict(), "prior_weight": self.module.prior_weight.detach().cpu()},
                       tmp / "head.pt")
            meta = {**self.meta, "format": 1, "max_length": self.max_length, "use_prior": self.use_prior,
                    "prior_norm": self.prior_norm}
            atomic_write_text(tmp / RERANKER_MARKER, json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> CrossEncoderReranker:
        """Load a reranker saved by :meth:`save`."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / RERANKER_MARKER).exists():
            raise FileNotFoundError(f"no trained reranker at {path} (missing {RERANKER_MARKER})")
        meta = json.loads((path / RERANKER_MARKER).read_text())
        bert = AutoModel.from_pretrained(str(path / "encoder"))
        tokenizer = AutoTokenizer.from_pretrained(str(path / "encoder"))
        state = torch.load(path / "head.pt", map_location="cpu", weights_only=True)
        module = _torch_module()(bert, float(state["prior_weight"]))
        module.head.load_state_dict(state["head"])
        # saved before the prior was normalised: keep the raw cosine it was trained with
        return cls(module, tokenizer, int(meta.get("max_length", 256)), bool(meta.get("use_prior", True)), device, meta,
                   prior_norm=str(meta.get("prior_norm", "none")))


LLM_PROMPT = (
    "You decide whether a skill helps with a request.\n\nRequest: {query}\n\nSkill: {doc}\n\n"
    "Does this skill help with the request? Answer yes or no."
)


def _causal_lm(model: Any, tokenizer: Any | None, device: str, owner: str) -> tuple[Any, Any]:
    """(model, tokenizer): loaded by name when ``model`` is a string, else as given (with its tokenizer)."""
    if isinstance(model, str):
        return load_causal_lm(model, device=device)
    if tokenizer is None:
        raise ValueError(f"{owner} needs the tokenizer of the model it is given")
    return model, tokenizer


class LLMReranker:
    """Pointwise LLM judge: score = logit("yes") - logit("no") for the first answer token."""

    def __init__(self, model: Any = "smollm2-135m", tokenizer: Any | None = None, max_doc_chars: int = 600,
                 batch_size: int = 8, device: str = "cpu") -> None:
        self.model, self.tokenizer = _causal_lm(model, tokenizer, device, "LLMReranker")
        self.max_doc_chars = max_doc_chars
        self.batch_size = batch_size
        self.yes_ids = self._first_tokens(("yes", "Yes", " yes", " Yes"))
        self.no_ids = self._first_tokens(("no", "No", " no", " No"))

    def _first_tokens(self, words: Sequence[str]) -> list[int]:
        return sorted({self.tokenizer.encode(w, add_special_tokens=False)[0] for w in words})

    def _prompt(self, query: str, doc: RouterDoc) -> str:
        content = LLM_PROMPT.format(query=query, doc=doc.to_text()[: self.max_doc_chars])
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                      add_generation_prompt=True)
        return content + "\nAnswer:"

    def score(self, query: str, docs: Sequence[RouterDoc], prior: np.ndarray | None = None) -> np.ndarray:
        """Yes-minus-no logit per doc (``prior`` is ignored)."""
        import torch

        prompts = [self._prompt(query, d) for d in docs]
        out = []
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for start in range(0, len(prompts), self.batch_size):
                batch = self.tokenizer(prompts[start:start + self.batch_size], return_tensors="pt", padding=True)
                batch = {k: v.to(device) for k, v in batch.items()}
                logits = self.model(**batch).logits[:, -1, :].float()
                yes = torch.logsumexp(logits[:, self.yes_ids], dim=-1)
                no = torch.logsumexp(logits[:, self.no_ids], dim=-1)
                out.append((yes - no).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)


UPR_PROMPT = "Skill: {doc}\n\nA user request that this skill helps with:"


class QueryLikelihoodReranker:
    """Zero-shot reranker: score = mean log p(query tokens | skill prompt) under a causal LM (UPR).

    With a first-stage ``prior`` the score is ``zscore(log-likelihood) + prior_weight x zscore(prior)``,
    the normalised-score mean of the seed paper's ensemble teacher; ``prior_weight=0`` ranks by the
    likelihood alone. On the held-out split with SmolLM2-135M (benchmarks/README.md), reranking the
    dense top-20, the likelihood alone ranks below dense (Hit@1 0.438 vs 0.562) and with the prior
    above it by 2 queries of 64 (0.594, not significant).
    """

    def __init__(self, model: Any = "smollm2-135m", tokenizer: Any | None = None, max_doc_chars: int = 600,
                 prior_weight: float = 1.0, batch_size: int = 10, device: str = "cpu") -> None:
        self.model, self.tokenizer = _causal_lm(model, tokenizer, device, "QueryLikelihoodReranker")
        self.max_doc_chars = max_doc_chars
        self.prior_weight = prior_weight
        self.batch_size = batch_size

    def log_likelihoods(self, query: str, docs: Sequence[RouterDoc]) -> np.ndarray:
        """Mean log-probability per query token after each doc's prompt (right-padded batches)."""
        import torch

        query_ids = self.tokenizer.encode(" " + query.strip(), add_special_tokens=False)
        if not query_ids:
            raise ValueError("an empty query has no likelihood")
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = []
        for start in range(0, len(docs), self.batch_size):
            prompts = [self.tokenizer.encode(UPR_PROMPT.format(doc=d.to_text()[: self.max_doc_chars]),
                                             add_special_tokens=False) for d in docs[start:start + self.batch_size]]
            width = max(len(p) for p in prompts) + len(query_ids)
            ids = torch.full((len(prompts), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, prompt in enumerate(prompts):
                seq = prompt + query_ids
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            # the query's tokens sit at positions len(prompt) .. len(prompt)+|q|-1, predicted one step earlier
            out.extend(logp[row, len(p) - 1: len(p) - 1 + len(query_ids)].mean().item() for row, p in enumerate(prompts))
        return np.asarray(out, np.float32)

    def score(self, query: str, docs: Sequence[RouterDoc], prior: np.ndarray | None = None) -> np.ndarray:
        """Query log-likelihood per doc, mixed with the z-scored ``prior`` when one is given."""
        if not docs:
            return np.zeros(0, np.float32)
        likelihood = self.log_likelihoods(query, docs)
        if prior is None or self.prior_weight == 0:
            return likelihood
        return (zscore(likelihood) + self.prior_weight * zscore(prior)).astype(np.float32)


class EndpointJudgeReranker:
    """The yes/no judge on an OpenAI-compatible server: score = P("yes") of the first answer token.

    The server answers greedily with one token; its log-prob gives P(yes) (or 1 - P(no)), and a
    server that returns no log-probs gives 1 for yes and 0 for no. ``backend`` is an
    :class:`~skillkit.core.llm.openai_compat.OpenAICompatibleBackend` (or any LLM backend).
    """

    def __init__(self, backend: Any, max_doc_chars: int = 1200) -> None:
        self.backend = backend
        self.max_doc_chars = max_doc_chars

    @classmethod
    def from_spec(cls, spec: str) -> EndpointJudgeReranker:
        """``openai:MODEL@BASE_URL`` (the API key, if any, from ``OPENAI_API_KEY``)."""
        import os

        from skillkit.core.llm.openai_compat import OpenAICompatibleBackend

        model, sep, url = spec.removeprefix("openai:").partition("@")
        if not model or not sep or not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint reranker {spec!r}: write it as openai:MODEL@http://HOST:PORT/v1")
        return cls(OpenAICompatibleBackend(model, url, api_key=os.environ.get("OPENAI_API_KEY")))

    def score(self, query: str, docs: Sequence[RouterDoc], prior: np.ndarray | None = None) -> np.ndarray:
        """P(yes) per doc (``prior`` is ignored)."""
        from skillkit.core.llm.base import SamplingParams

        requests = [[{"role": "user", "content": LLM_PROMPT.format(query=query, doc=d.to_text()[: self.max_doc_chars])}]
                    for d in docs]
        answers = self.backend.generate(requests, SamplingParams(temperature=0.0, max_new_tokens=1))
        return np.asarray([_p_yes(a.text, a.logprobs) for a in answers], np.float32)


def _p_yes(text: str, logprobs: Sequence[float]) -> float:
    word = text.strip().lower()
    p = float(np.exp(logprobs[0])) if logprobs else 1.0
    if word.startswith("yes"):
        return p
    if word.startswith("no"):
        return 1.0 - p
    return 0.5


def resolve_reranker(spec: Any, library_path: str | Path | None = None, device: str = "cpu") -> Any | None:
    """Turn a reranker spec into a reranker (or None).

    ``None``: no reranker. ``"auto"``: the trained reranker stored next to the library
    (:func:`default_reranker_path`) when there is one, else None. ``"llm"``: the embedded
    SmolLM2 judge. ``"upr"`` or ``"upr:MODEL"``: query likelihood under SmolLM2 or another causal
    LM (a folder or an id in the local cache). ``"openai:MODEL@URL"``: the judge on an
    OpenAI-compatible server. A path: a trained cross-encoder. An object with ``score``: used as is.
    """
    if spec is None:
        return None
    if hasattr(spec, "score"):
        return spec
    if spec == "auto":
        if library_path is None:
            return None
        path = default_reranker_path(library_path)
        return CrossEncoderReranker.load(path, device) if (path / RERANKER_MARKER).exists() else None
    if spec == "llm":
        return LLMReranker(device=device)
    if isinstance(spec, str) and (spec == "upr" or spec.startswith("upr:")):
        return QueryLikelihoodReranker(spec.partition(":")[2] or "smollm2-135m", device=device)
    if isinstance(spec, str) and spec.startswith("openai:"):
        return EndpointJudgeReranker.from_spec(spec)
    if isinstance(spec, str | Path) and (Path(spec) / RERANKER_MARKER).exists():
        return CrossEncoderReranker.load(spec, device)
    raise ValueError(f"unknown reranker {spec!r}: use None, 'auto', 'llm', 'upr[:MODEL]', 'openai:MODEL@URL' "
                     "or the folder of a trained reranker")


def default_reranker_path(library_path: str | Path) -> Path:
    """Where ``train-reranker`` (and ``distill --student cross-encoder``) put a library's reranker by
    default: ``LIB/reranker`` or ``LIB.reranker``."""
    return beside_library(library_path, "reranker")
