"""Many GRU teams in one call: parameters stacked per architecture, evaluated with vmap.

Rows of a batch are played by different members (defender policies). Members with the same
architecture (input size, hidden size, actions) have their parameters stacked with
`torch.func.stack_module_state`; the rows are scattered into a padded [M, G, ...] block (G =
most rows of any member), one `vmap(functional_call)` evaluates every member on its rows,
and the result is gathered back. The call is differentiable in the observation, so gradient
attacks take one backward pass for the whole batch.
"""

from __future__ import annotations

import copy

import torch
from torch.func import functional_call, stack_module_state, vmap

from policies.rnn_agent import RNNAgent, build_inputs


class StackedTeam:
    """Implements arena.rollout.Team over a list of RNNAgents (one per member)."""

    def __init__(self, agents: list[RNNAgent], n_agents: int, n_actions: int, device="cpu"):
        if not agents:
            raise ValueError("a team needs at least one member")
        self.n_members = len(agents)
        self.n_agents, self.n_actions = n_agents, n_actions
        self.hidden = max(a.hidden for a in agents)
        self.device = torch.device(device)
        groups: dict[tuple, list[int]] = {}
        for m, agent in enumerate(agents):
            key = (agent.fc1.in_features, agent.hidden, agent.fc2.out_features)
            groups.setdefault(key, []).append(m)
        self.groups = []
        for key, members in groups.items():
            mods = [agents[m].to(self.device).eval() for m in members]
            params, buffers = stack_module_state(mods)
            params = {k: v.detach() for k, v in params.items()}
            base = copy.deepcopy(mods[0]).to("meta")
            member_ids = torch.tensor(members, dtype=torch.long, device=self.device)
            self.groups.append((key, member_ids, params, buffers, base))
        # member index → (group, position within group)
        self._group_of = torch.empty(self.n_members, dtype=torch.long, device=self.device)
        self._pos_in_group = torch.empty(self.n_members, dtype=torch.long, device=self.device)
        for g, (_, member_ids, *_rest) in enumerate(self.groups):
            self._group_of[member_ids] = g
            self._pos_in_group[member_ids] = torch.arange(len(member_ids), device=self.device)

    def initial_state(self, rows: int, device=None) -> torch.Tensor:
        return torch.zeros(rows, self.n_agents, self.hidden, device=device or self.device)

    def q_values(self, obs, hidden, last_action, member):
        """obs [R,n,o], hidden [R,n,H], last one-hot [R,n,A], member [R] → (q [R,n,A], h')."""
        R, n, _ = obs.shape
        inputs = build_inputs(obs, last_action)  # [R, n, in]
        if len(self.groups) == 1 and self.n_members == 1:
            _, _, params, buffers, base = self.groups[0]
            single = {k: v[0] for k, v in params.items()}
            q, h = functional_call(base, (single, {}), (inputs.reshape(R * n, -1),
                                                        hidden.reshape(R * n, -1)))
            return q.view(R, n, -1), h.view(R, n, -1)
        q_out = obs.new_zeros(R, n, self.n_actions)
        h_out = torch.zeros_like(hidden)
        group = self._group_of[member]
        for g, (key, member_ids, params, buffers, base) in enumerate(self.groups):
            rows = (group == g).nonzero().flatten() if len(self.groups) > 1 else None
            x = inputs if rows is None else inputs[rows]
            hh = hidden if rows is None else hidden[rows]
            pos = self._pos_in_group[member if rows is None else member[rows]]
            q, h = self._group_forward(key, len(member_ids), params, buffers, base, x, hh, pos)
            if rows is None:
                q_out, h_out = q, h
            else:
                q_out = q_out.index_put((rows,), q)
                h_out = h_out.index_put((rows,), h)
        return q_out, h_out

    @staticmethod
    def _group_forward(key, M, params, buffers, base, x, hidden, pos):
        """Rows x [r,n,in] of one architecture, member position pos [r] → q, h."""
        r, n, d_in = x.shape
        H = key[1]
        counts = torch.bincount(pos, minlength=M)
        G = int(counts.max())
        order = torch.argsort(pos, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.empty_like(pos)
        slot[order] = torch.arange(r, device=pos.device) - starts[pos[order]]
        xp = x.new_zeros(M, G, n, d_in).index_put((pos, slot), x)  # [M, G, n, in]
        hp = hidden.new_zeros(M, G, n, H).index_put((pos, slot), hidden[..., :H])

        def one(p, b, xi, hi):
            return functional_call(base, (p, b), (xi, hi))

        q, h = vmap(one)(params, buffers, xp.view(M, G * n, d_in), hp.view(M, G * n, H))
        q = q.view(M, G, n, -1)[pos, slot]  # [r, n, A]
        h = h.view(M, G, n, H)[pos, slot]
        return q, h
