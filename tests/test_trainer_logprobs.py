"""Chunked sampled-token log-probs equal the naive full-vocabulary computation, values and gradients."""

from __future__ import annotations

import torch

from trainer.logprobs import TokenLogprobs, chunked_token_logprobs, naive_token_logprobs


def _batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 2000, (3, 17), generator=g)
    attn = torch.ones_like(ids)
    attn[1, 13:] = 0  # right padding
    attn[2, 9:] = 0
    mask = torch.zeros_like(ids)
    mask[0, 5:] = 1
    mask[1, 8:13] = 1
    mask[2, 3:9] = 1
    return ids, attn, mask


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_chunked_equals_naive_values_and_gradients(tiny_lm):
    model, _ = tiny_lm
    ids, attn, mask = _batch()
    weights = torch.randn(ids.shape, generator=torch.Generator().manual_seed(1))

    model.zero_grad(set_to_none=True)
    naive = naive_token_logprobs(model, ids, attn, mask)
    (naive * weights).sum().backward()
    g_naive = _grads(model)

    model.zero_grad(set_to_none=True)
    chunked = chunked_token_logprobs(model, ids, attn, mask, chunk_size=4)  # several chunks, one partial
    (chunked * weights).sum().backward()
    g_chunked = _grads(model)
    model.zero_grad(set_to_none=True)

    assert torch.allclose(naive, chunked, atol=1e-5)
    assert (chunked[mask == 0] == 0).all()
    assert (chunked[mask == 1] < 0).all()
    assert g_naive.keys() == g_chunked.keys() and len(g_naive) > 0
    for name in g_naive:
        assert torch.allclose(g_naive[name], g_chunked[name], atol=1e-5, rtol=1e-4), name


def test_module_wrapper_and_no_grad(tiny_lm):
    model, _ = tiny_lm
    ids, attn, mask = _batch()
    with torch.no_grad():
        a = TokenLogprobs(model, chunk_size=5)(ids, attn, mask)
        b = TokenLogprobs(model, chunk_size=None)(ids, attn, mask)
    assert torch.allclose(a, b, atol=1e-5)
    assert not a.requires_grad
