"""Many GRU teams in one call: parameters stacked per architecture, grouped matmuls.

Rows of a batch are played by different members (defender policies). Members with the same
architecture (input size, hidden size, actions, recurrent or feed-forward, which input
extensions: `RNNAgent.layout`) have their parameters stacked into [M, ...]
tensors; the rows are scattered into a padded [M, G, ...] block (G = most rows of any member)
and each layer is one `baddbmm` over all members at once, then the result is gathered back.
When members hold very different numbers of rows, the block is cut into chunks of one member
each instead (`_blocks`), so the padding stays small.
(`torch.func.vmap` has no batching rule for `gru_cell` and would fall back to a Python loop,
so the GRU cell is written out with PyTorch's gate order r, z, n; EPyMARL's feed-forward
agent has a Linear + ReLU in its place.) CommNet members (policies.teams.commnet,
`layout` tagged "commnet") form groups of their own: each row's mean of the other agents'
messages is taken from its hidden state before the rows are scattered, and enters as extra
input columns. TarMAC members (policies.teams.tarmac, tagged "tarmac") form groups of their
own too; their attention needs each member's own query weights, so it runs inside the padded
block, where every row keeps its agents side by side. NDQ members (policies.teams.ndq, tagged
"ndq") form groups of their own as CommNet's do, the other agents' messages side by side as
the extra columns; they send their messages' means (StackedTeam plays, it does not train).
Groups differ in hidden width; the
team's state is as wide as the widest and each group reads and writes its own leading
columns. The call is differentiable in the observation, so gradient attacks take one backward
pass for the whole batch. `messages` / `with_messages` read and replace the in-transit
messages of CommNet, TarMAC and NDQ rows (columns H..H+d of each row's own group; for TarMAC the
whole [signature | value]) for the message surface's hook in arena.rollout. Message-filter
members (policies.message.msg_filter, tagged "msg_filter") wrap a communicating agent: their
group runs its few members one by one, each rewriting the in-transit messages of its own rows
(after any attack, before its agents read them) and then playing its base agent as a
one-member group of the base's layout.
"""

from __future__ import annotations

import torch

from policies.teams.commnet import mean_of_others
from policies.teams.ndq import others_in_order
from policies.teams.rnn_agent import RNNAgent, build_inputs, select_inputs
from policies.teams.tarmac import attend_to_others

# layout tags of agents whose recurrent state ends with the messages they send
COMMUNICATING = ("commnet", "tarmac", "ndq", "msg_filter")


def _stack(agents: list[RNNAgent], device) -> dict[str, torch.Tensor]:
    """Stacked, transposed weights for x @ W: W [M, in, out], b [M, 1, out]."""
    def w(name):
        return torch.stack([dict(a.named_parameters())[name].detach() for a in agents]).to(device)

    p = {
        "w1": w("fc1.weight").transpose(1, 2).contiguous(), "b1": w("fc1.bias").unsqueeze(1),
        "w2": w("fc2.weight").transpose(1, 2).contiguous(), "b2": w("fc2.bias").unsqueeze(1),
    }
    if hasattr(agents[0], "msg"):
        p.update({"wm": w("msg.weight").transpose(1, 2).contiguous(),
                  "bm": w("msg.bias").unsqueeze(1)})
    if hasattr(agents[0], "query"):
        for short, name in (("q", "query"), ("k", "key"), ("v", "value")):
            p.update({"w" + short: w(f"{name}.weight").transpose(1, 2).contiguous(),
                      "b" + short: w(f"{name}.bias").unsqueeze(1)})
    if hasattr(agents[0], "listen"):
        p.update({"wl": w("listen.weight").transpose(1, 2).contiguous(),
                  "wmu": w("mu.weight").transpose(1, 2).contiguous(),
                  "bmu": w("mu.bias").unsqueeze(1)})
    if agents[0].use_rnn:
        p.update({
            "wi": w("rnn.weight_ih").transpose(1, 2).contiguous(),
            "bi": w("rnn.bias_ih").unsqueeze(1),
            "wh": w("rnn.weight_hh").transpose(1, 2).contiguous(),
            "bh": w("rnn.bias_hh").unsqueeze(1),
        })
    else:  # EPyMARL's feed-forward agent: `rnn` is a Linear layer
        p.update({"wr": w("rnn.weight").transpose(1, 2).contiguous(),
                  "br": w("rnn.bias").unsqueeze(1)})
    return p


def grouped_forward(p: dict[str, torch.Tensor], x: torch.Tensor, h: torch.Tensor):
    """x [M, R, in], h [M, R, H] → (q [M, R, A], h' [M, R, H]): RNNAgent for every member."""
    y = torch.relu(torch.baddbmm(p["b1"], x, p["w1"]))
    if "wr" in p:
        h_new = torch.relu(torch.baddbmm(p["br"], y, p["wr"]))
        return torch.baddbmm(p["b2"], h_new, p["w2"]), h_new
    h_new = _gru(p, y, h)
    return torch.baddbmm(p["b2"], h_new, p["w2"]), h_new


def _gru(p: dict[str, torch.Tensor], y: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    gi = torch.baddbmm(p["bi"], y, p["wi"])
    gh = torch.baddbmm(p["bh"], h, p["wh"])
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def grouped_commnet(p: dict[str, torch.Tensor], xc: torch.Tensor, hm: torch.Tensor, d_in: int,
                    H: int):
    """xc [M, R, in + d] (inputs, then the mean of the others' messages), hm [M, R, H + d]
    → (q [M, R, A], [h' | m'] [M, R, H + d]): CommNetAgent for every member."""
    y = torch.relu(torch.baddbmm(p["b1"], xc[..., :d_in], p["w1"]))
    h_new = _gru(p, torch.cat([y, xc[..., d_in:]], -1), hm[..., :H])
    m_new = torch.tanh(torch.baddbmm(p["bm"], h_new, p["wm"]))
    return torch.baddbmm(p["b2"], h_new, p["w2"]), torch.cat([h_new, m_new], -1)


def grouped_tarmac(p: dict[str, torch.Tensor], x: torch.Tensor, hkv: torch.Tensor, n: int,
                   H: int, dk: int):
    """x [M, R, in], hkv [M, R, H + d_k + d_v] with R = rows · n (each row's n agents side by
    side) → (q [M, R, A], [h' | k' | v'] [M, R, H + d_k + d_v]): TarMACAgent for every member."""
    M, R, _ = x.shape
    y = torch.relu(torch.baddbmm(p["b1"], x, p["w1"]))
    h = hkv[..., :H]
    query = torch.baddbmm(p["bq"], torch.cat([y, h], -1), p["wq"])
    c = attend_to_others(query.view(M, R // n, n, dk), hkv[..., H:H + dk].view(M, R // n, n, dk),
                         hkv[..., H + dk:].reshape(M, R // n, n, -1)).reshape(M, R, -1)
    h_new = _gru(p, torch.cat([y, c], -1), h)
    k_new = torch.baddbmm(p["bk"], h_new, p["wk"])
    v_new = torch.tanh(torch.baddbmm(p["bv"], h_new, p["wv"]))
    return torch.baddbmm(p["b2"], h_new, p["w2"]), torch.cat([h_new, k_new, v_new], -1)


def grouped_ndq(p: dict[str, torch.Tensor], xc: torch.Tensor, hm: torch.Tensor, d_in: int,
                H: int):
    """xc [M, R, in + (n − 1)·d] (inputs, then the other agents' messages), hm [M, R, H + d]
    → (q [M, R, A], [h' | μ'] [M, R, H + d]): NDQAgent in eval mode for every member."""
    y = torch.relu(torch.baddbmm(p["b1"], xc[..., :d_in], p["w1"])
                   + torch.bmm(xc[..., d_in:], p["wl"]))
    h_new = _gru(p, y, hm[..., :H])
    m_new = torch.baddbmm(p["bmu"], h_new, p["wmu"])
    return torch.baddbmm(p["b2"], h_new, p["w2"]), torch.cat([h_new, m_new], -1)


def _width(key: tuple) -> int:
    """The recurrent state's width of a group's layout: H, H + d for CommNet and NDQ,
    H + d_k + d_v for TarMAC."""
    if key[0] in ("commnet", "ndq"):
        return key[2] + key[3]
    if key[0] == "tarmac":
        return key[2] + key[3] + key[4]
    if key[0] == "msg_filter":
        return _width(key[1])
    return key[1]


# chunks are at least this many rows: below it, gathering a chunk's parameters costs more
# than the padding it saves
_MIN_CHUNK = 16


def _blocks(counts: torch.Tensor, pos: torch.Tensor, rank: torch.Tensor, r: int, M: int):
    """Where each row goes in the grouped call: (blocks, slots per block, block [r], slot [r],
    chunks of each member [M] or None).

    One block per member (G = most rows of any member) pads the others up to G; when members
    hold very different numbers of rows (a mixture's draws; episodes that end early and leave
    the batch) most of that block is padding. Then the rows go in chunks of C rows instead,
    each chunk played by one member, so only each member's last chunk is padded (at most
    M·(C − 1) rows) at the cost of gathering the chunks' parameters."""
    G = int(counts.max())
    C = max(_MIN_CHUNK, -(-r // (8 * M)))
    per = (counts + C - 1) // C  # chunks of each member
    K = int(per.sum())
    if K * C * 9 >= M * G * 8:  # chunks save under an eighth: one block per member
        return M, G, pos, rank, None
    first = torch.cumsum(per, 0) - per
    return K, C, first[pos] + rank // C, rank % C, per


def _chunk_params(params: dict, per: torch.Tensor, gathered: dict | None) -> dict:
    """Each chunk's member's parameters; `gathered` keeps the last layout's, which the next
    calls of a step reuse (a PGD attack asks ten times for the same rows)."""
    layout = tuple(per.tolist())
    if gathered is not None and gathered.get("layout") == layout:
        return gathered["params"]
    of = torch.repeat_interleave(torch.arange(len(per), device=per.device), per)
    out = {name: w[of] for name, w in params.items()}
    if gathered is not None:
        gathered.update(layout=layout, params=out)
    return out


class StackedTeam:
    """Implements arena.rollout.Team over a list of RNNAgents, CommNetAgents, TarMACAgents or
    NDQAgents (one per member)."""

    def __init__(self, agents: list[RNNAgent], n_agents: int, n_actions: int, device="cpu"):
        if not agents:
            raise ValueError("a team needs at least one member")
        self.n_members = len(agents)
        self.n_agents, self.n_actions = n_agents, n_actions
        self.hidden = max(a.hidden for a in agents)
        self.device = torch.device(device)
        groups: dict[tuple, list[int]] = {}
        for m, agent in enumerate(agents):
            groups.setdefault(agent.layout, []).append(m)
        self.groups = []
        self._group_of = torch.empty(self.n_members, dtype=torch.long, device=self.device)
        self._pos = torch.empty(self.n_members, dtype=torch.long, device=self.device)
        for g, (key, members) in enumerate(groups.items()):
            ids = torch.tensor(members, dtype=torch.long, device=self.device)
            self._group_of[ids] = g
            self._pos[ids] = torch.arange(len(members), device=self.device)
            if key[0] == "msg_filter":  # not stacked: (filter agent, its base's parameters)
                params = [(agents[m].to(self.device), _stack([agents[m].base], self.device))
                          for m in members]
            else:
                params = _stack([agents[m] for m in members], self.device)
            self.groups.append((key, len(members), params))
        # group → the parameters its chunks gathered last (`_chunk_params`)
        self._gathered: list[dict] = [{} for _ in self.groups]
        # where each member's messages sit in its state: columns start..start+width (width 0:
        # a member that sends none)
        talks = [a.layout[0] in COMMUNICATING for a in agents]
        self._msg_width = torch.tensor([a.msg_dim if t else 0 for a, t in zip(agents, talks)],
                                       dtype=torch.long, device=self.device)
        self._msg_start = torch.tensor([a.rnn_hidden if t else 0 for a, t in zip(agents, talks)],
                                       dtype=torch.long, device=self.device)

    def message_width(self, member: torch.Tensor) -> torch.Tensor:
        """[R] the message width of each row's member (0: it does not communicate)."""
        return self._msg_width[member.to(self.device)]

    def _message_columns(self, hidden: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
        """[R, n, d] indices of the rows' message columns; one width d for all rows."""
        member = member.to(self.device)
        widths = torch.unique(self._msg_width[member])
        if len(widths) != 1 or int(widths[0]) == 0:
            raise ValueError("messages are read from rows whose members all send messages of "
                             f"one width; these send widths {widths.tolist()}")
        d = int(widths[0])
        cols = self._msg_start[member].unsqueeze(1) + torch.arange(d, device=self.device)
        return cols.to(hidden.device).unsqueeze(1).expand(-1, hidden.shape[1], -1)

    def messages(self, hidden: torch.Tensor, member: torch.Tensor) -> torch.Tensor:
        """hidden [R, n, H] → the messages in transit [R, n, d]."""
        return hidden.gather(-1, self._message_columns(hidden, member))

    def with_messages(self, hidden: torch.Tensor, msgs: torch.Tensor,
                      member: torch.Tensor) -> torch.Tensor:
        """hidden [R, n, H] with its in-transit messages replaced by msgs [R, n, d]."""
        return hidden.scatter(-1, self._message_columns(hidden, member), msgs.to(hidden.dtype))

    def initial_state(self, rows: int, device=None) -> torch.Tensor:
        return torch.zeros(rows, self.n_agents, self.hidden, device=device or self.device)

    def q_values(self, obs, hidden, last_action, member):
        """obs [R,n,o], hidden [R,n,H], last one-hot [R,n,A], member [R] → (q [R,n,A], h')."""
        inputs = build_inputs(obs, last_action)  # [R, n, in]
        if len(self.groups) == 1:
            key, M, params = self.groups[0]
            return self._group(key, M, params, inputs, hidden, self._pos[member],
                               self._gathered[0])
        q_out = obs.new_zeros(*obs.shape[:2], self.n_actions)
        h_out = torch.zeros_like(hidden)
        group = self._group_of[member]
        for g, (key, M, params) in enumerate(self.groups):
            rows = (group == g).nonzero().flatten()
            if len(rows) == 0:
                continue
            W = _width(key)
            q, h = self._group(key, M, params, inputs[rows], hidden[rows, :, :W],
                               self._pos[member[rows]], self._gathered[g])
            q_out = q_out.index_put((rows,), q)
            h_out = h_out.index_put((rows,), torch.nn.functional.pad(h, (0, self.hidden - W)))
        return q_out, h_out

    @staticmethod
    def _group(key, M, params, x, hidden, pos, gathered=None):
        """Rows x [r,n,in] of one architecture played by member positions pos [r] → q, h."""
        if key[0] == "msg_filter":
            return StackedTeam._filtered(key, params, x, hidden, pos)
        if key[0] in ("commnet", "ndq"):
            _, fc1_in, H_rnn, _, A, last, ids, obs_dim = key
            if x.shape[-1] != fc1_in:
                x = select_inputs(x, obs_dim, A, last, ids)
            read, grouped = ((mean_of_others, grouped_commnet) if key[0] == "commnet"
                             else (others_in_order, grouped_ndq))
            # what an agent reads comes from its own row's agents, so it is taken before the
            # rows are scattered to members
            x = torch.cat([x, read(hidden[..., H_rnn:])], -1)

            def forward(p, xs, hs):
                return grouped(p, xs, hs, fc1_in, H_rnn)
        elif key[0] == "tarmac":
            _, fc1_in, H_rnn, dk, _, A, last, ids, obs_dim = key
            if x.shape[-1] != fc1_in:
                x = select_inputs(x, obs_dim, A, last, ids)
            n_agents = x.shape[1]

            def forward(p, xs, hs):
                return grouped_tarmac(p, xs, hs, n_agents, H_rnn, dk)
        else:
            fc1_in, _, A, _, last, ids, obs_dim = key
            if x.shape[-1] != fc1_in:
                x = select_inputs(x, obs_dim, A, last, ids)
            forward = grouped_forward
        r, n, d_in = x.shape
        H = _width(key)
        if M == 1:
            q, h = forward(params, x.reshape(1, r * n, d_in), hidden.reshape(1, r * n, H))
            return q.view(r, n, -1), h.view(r, n, H)
        counts = torch.bincount(pos, minlength=M)
        order = torch.argsort(pos, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(pos)  # each row's index among its member's rows
        rank[order] = torch.arange(r, device=pos.device) - starts[pos[order]]
        blocks, slots, block, slot, per = _blocks(counts, pos, rank, r, M)
        if per is not None:  # chunks of one member each: their parameters, gathered
            params = _chunk_params(params, per, gathered)
        xp = x.new_zeros(blocks, slots, n, d_in).index_put((block, slot), x)
        hp = hidden.new_zeros(blocks, slots, n, H).index_put((block, slot), hidden)
        q, h = forward(params, xp.view(blocks, slots * n, d_in), hp.view(blocks, slots * n, H))
        return q.view(blocks, slots, n, -1)[block, slot], h.view(blocks, slots, n, H)[block, slot]

    @staticmethod
    def _filtered(key, members, x, hidden, pos):
        """Rows of message-filter members: a loop over the members (a few), each one filtered
        call of its base's layout over all its rows."""
        q_out, h_out = None, torch.zeros_like(hidden)
        for m, (agent, base_params) in enumerate(members):
            rows = (pos == m).nonzero().flatten()
            if len(rows) == 0:
                continue
            h_in = agent.filter_hidden(hidden[rows])
            q, h = StackedTeam._group(key[1], 1, base_params, x[rows], h_in,
                                      torch.zeros_like(rows))
            if q_out is None:
                q_out = q.new_zeros(*x.shape[:2], q.shape[-1])
            q_out = q_out.index_put((rows,), q)
            h_out = h_out.index_put((rows,), h)
        return q_out, h_out
