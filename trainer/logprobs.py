"""Log-probabilities of the sampled tokens, without materialising full-vocabulary logits.

A policy-gradient loss only needs ``log p(y_t | y_<t)`` of the token that was actually sampled.
The naive way, ``model(ids).logits.float().log_softmax(-1).gather(...)``, builds a
``[batch, seq, vocab]`` fp32 tensor (49k vocab x 1024 tokens = 200 MB per sequence, times the
copies autograd keeps). Here the model body runs once to get hidden states; then the output head
and the log-softmax are applied to a chunk of positions at a time, each chunk under
``torch.utils.checkpoint`` so its logits are freed after the forward and recomputed in the
backward. Only response positions (``mask == 1``) are scored, which also skips the (long)
multi-turn prompts. Gradients flow to every parameter exactly as in the naive computation.

Conventions: ``input_ids`` is ``[B, T]`` (right padded); the returned tensor is ``[B, T]`` where
entry ``t`` is ``log p(input_ids[:, t] | input_ids[:, :t])`` and is 0 where ``mask`` is 0
(position 0 has no prediction and is always 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def unwrap_causal_lm(model: nn.Module) -> nn.Module:
    """The underlying transformers causal LM (through DDP/accelerate and peft wrappers)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):  # DDP / accelerate
        model = model.module
    if hasattr(model, "get_base_model"):  # peft: LoRA layers are injected into the base model
        model = model.get_base_model()
    return model


def body_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Split a causal LM into its body (ids -> final hidden states) and its output head."""
    lm = unwrap_causal_lm(model)
    body = lm.get_decoder() if hasattr(lm, "get_decoder") else getattr(lm, "model", None)
    head = lm.get_output_embeddings()
    if body is None or head is None:
        raise TypeError(f"cannot find the body and output head of {type(lm).__name__}")
    return body, head


def _softcap(model: nn.Module) -> float | None:
    cap = getattr(unwrap_causal_lm(model).config, "final_logit_softcapping", None)
    return float(cap) if cap else None


def _chunk_logprobs(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor,
                    softcap: float | None) -> torch.Tensor:
    """log p(target) for ``hidden [N, H]``: fp32 logits of this chunk only, ``gather - logsumexp``."""
    logits = head(hidden).float()
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def chunked_token_logprobs(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                           mask: torch.Tensor, chunk_size: int = 512) -> torch.Tensor:
    """Sampled-token log-probs at the positions where ``mask`` is 1, chunk by chunk (see module doc)."""
    body, head = body_and_head(model)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                  use_cache=False).last_hidden_state                          # [B, T, H]
    # Hidden state at t-1 predicts token t; keep only the scored positions, packed: [N, H].
    want = mask[:, 1:].bool()
    h = hidden[:, :-1][want]
    targets = input_ids[:, 1:][want]
    softcap = _softcap(model)
    pieces = []
    for start in range(0, h.shape[0], chunk_size):
        h_c, y_c = h[start:start + chunk_size], targets[start:start + chunk_size]
        if torch.is_grad_enabled() and h_c.requires_grad:
            pieces.append(checkpoint(_chunk_logprobs, head, h_c, y_c, softcap, use_reentrant=False))
        else:
            pieces.append(_chunk_logprobs(head, h_c, y_c, softcap))
    packed = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
    rows, cols = want.nonzero(as_tuple=True)
    out = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    return out.index_put((rows, cols + 1), packed)


def naive_token_logprobs(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         mask: torch.Tensor) -> torch.Tensor:
    """Reference implementation: full ``[B, T, V]`` fp32 log-softmax (memory-hungry; tests/benchmarks)."""
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                   use_cache=False).logits.float()
    logp = F.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    logp = F.pad(logp, (1, 0))
    return logp * mask.to(logp.dtype)


def token_logprobs(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   mask: torch.Tensor, chunk_size: int | None = 512) -> torch.Tensor:
    """Sampled-token log-probs ``[B, T]``: chunked when ``chunk_size`` is set, naive when it is None."""
    if chunk_size is None:
        return naive_token_logprobs(model, input_ids, attention_mask, mask)
    return chunked_token_logprobs(model, input_ids, attention_mask, mask, chunk_size)


@torch.no_grad()
def token_logprobs_and_entropy(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                               mask: torch.Tensor, chunk_size: int | None = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, T]`` sampled-token log-probs and ``[B, T]`` entropies (nats) of the next-token distribution
    at the same positions (0 where ``mask`` is 0), one body pass, the head chunk by chunk; no gradient
    (the teacher's uncertainty, :func:`trainer.losses.uncertainty_weight`)."""
    body, head = body_and_head(model)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    hidden = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                  use_cache=False).last_hidden_state
    want = mask[:, 1:].bool()
    h, targets = hidden[:, :-1][want], input_ids[:, 1:][want]
    softcap = _softcap(model)
    step = chunk_size or max(h.shape[0], 1)
    logps, entropies = [], []
    for start in range(0, h.shape[0], step):
        logits = head(h[start:start + step]).float()
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        logz = torch.logsumexp(logits, dim=-1)
        logps.append(logits.gather(-1, targets[start:start + step, None]).squeeze(-1) - logz)
        entropies.append(logz - (torch.softmax(logits, dim=-1) * logits).sum(-1))
    rows, cols = want.nonzero(as_tuple=True)
    out = []
    for pieces in (logps, entropies):
        packed = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
        out.append(torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
                   .index_put((rows, cols + 1), packed))
    return out[0], out[1]


@torch.no_grad()
def next_token_logprobs(model: nn.Module, prompts: list[list[int]], pad_id: int = 0) -> torch.Tensor:
    """``[len(prompts), vocab]`` fp32 log-probs of the token that follows each prompt: one body pass
    over the right-padded prompts and the output head on their last positions only (so scoring k
    one-token continuations of a prompt costs one prompt pass, not k)."""
    body, head = body_and_head(model)
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, :len(p)] = torch.tensor(p, dtype=torch.long)
        attn[row, :len(p)] = 1
    ids, attn = ids.to(device), attn.to(device)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    hidden = body(input_ids=ids, attention_mask=attn, position_ids=positions, use_cache=False).last_hidden_state
    last = hidden[torch.arange(len(prompts), device=device), attn.sum(-1) - 1]       # [B, H]
    logits = head(last).float()
    cap = _softcap(model)
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits, dim=-1)


class TokenLogprobs(nn.Module):
    """``forward(input_ids, attention_mask, mask) -> [B, T]`` sampled-token log-probs.

    Wrapping the policy in this module makes the chunked computation *the* forward pass, so
    DDP / FSDP wrappers (accelerate) see one forward call and synchronise gradients as usual.
    """

    def __init__(self, model: nn.Module, chunk_size: int | None = 512) -> None:
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return token_logprobs(self.model, input_ids, attention_mask, mask, self.chunk_size)
