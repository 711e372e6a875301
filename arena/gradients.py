"""Gradient attacks of one victim sharing each forward and backward pass.

A gradient attack written as a generator yields `GradRequest`s: a point x [R, n, o] at which
it needs the victim's Q-values and, when it gives a loss, ∇ₓ Σ loss(Q(x)). It receives
`(q, grad)` back (both detached; grad None without a loss) and returns its perturbed
observations. Written this way, the attacks that share a victim in one rollout step are
driven in lockstep (`drive_together`): every round concatenates their requests into one
forward and one backward pass over the union of their rows, so FGSM, PGD-10 and PGD-gap on
one team take 11 passes instead of 23. Each
row's loss depends on its own row only, so the gradient of the summed loss at a row is the
gradient that attack alone would get. `drive` answers one attack by itself (the same code,
a batch of one attack).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator

import torch

QFn = Callable[[torch.Tensor], torch.Tensor]  # obs [R, n, o] -> Q [R, n, A]


@dataclass
class GradRequest:
    x: torch.Tensor  # [R, n, o]
    # q [R, n, A] -> per-row losses of any shape, summed; None: Q-values only
    loss: Callable[[torch.Tensor], torch.Tensor] | None = None


Answer = tuple[torch.Tensor, torch.Tensor | None]
Steps = Generator[GradRequest, Answer, torch.Tensor]


def answer(requests: list[GradRequest], q_fn: QFn) -> list[Answer]:
    """One forward (and, if any request has a loss, one backward) pass of `q_fn` over the
    requests' points concatenated in order; `q_fn` covers exactly those rows."""
    sizes = [len(r.x) for r in requests]
    need_grad = any(r.loss is not None for r in requests)
    x = torch.cat([r.x.detach() for r in requests]).requires_grad_(need_grad)
    with torch.set_grad_enabled(need_grad):
        q = q_fn(x)
        parts = q.split(sizes)
        grads: list[torch.Tensor | None] = [None] * len(requests)
        if need_grad:
            loss = sum(r.loss(p).sum() for r, p in zip(requests, parts) if r.loss is not None)
            (g,) = torch.autograd.grad(loss, x)
            grads = [gi if r.loss is not None else None
                     for r, gi in zip(requests, g.split(sizes))]
    return [(p.detach(), gi) for p, gi in zip(parts, grads)]


def drive(steps: Steps, q_fn: QFn) -> torch.Tensor:
    """Run one attack's generator to its result with `q_fn` answering every request."""
    return drive_together([steps], [None], lambda _rows: q_fn)[0]


def drive_together(steps: list[Steps], rows: list, q_fn_for: Callable[[object], QFn]
                   ) -> list[torch.Tensor]:
    """Run attacks in lockstep; attack i plays rows `rows[i]` (a [R_i] index tensor, or None
    when there is one attack). Each round `q_fn_for(rows of the round's attacks, concatenated)`
    answers all their requests in one pass. Returns each attack's result, in order."""
    results: list[torch.Tensor | None] = [None] * len(steps)
    pending: dict[int, GradRequest] = {}
    for i, gen in enumerate(steps):
        _advance(i, gen, None, pending, results)
    while pending:
        idx = list(pending)
        union = rows[0] if rows[0] is None else torch.cat([rows[i] for i in idx])
        answers = answer([pending[i] for i in idx], q_fn_for(union))
        for i, ans in zip(idx, answers):
            _advance(i, steps[i], ans, pending, results)
    return results


def _advance(i: int, gen: Steps, ans: Answer | None, pending: dict, results: list) -> None:
    try:
        pending[i] = next(gen) if ans is None else gen.send(ans)
    except StopIteration as stop:
        pending.pop(i, None)
        results[i] = stop.value
