"""VDN mixer: Sunehag et al., "Value-Decomposition Networks For Cooperative Multi-Agent
Learning" (AAMAS 2018), Q_tot(τ, u) = Σ_i Q_i(τ_i, u_i) (their eq. 1)."""

from __future__ import annotations

import torch
import torch.nn as nn


class VDNMixer(nn.Module):
    def forward(self, agent_qs: torch.Tensor, states: torch.Tensor | None = None) -> torch.Tensor:
        """agent_qs [..., n] → Q_tot [..., 1]; the state is not used."""
        return agent_qs.sum(dim=-1, keepdim=True)
