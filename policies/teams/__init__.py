"""The team networks: the GRU agent and its greedy controller (`rnn_agent`), the QMIX and VDN
mixers (`qmix`, `vdn`), and many teams evaluated in one call (`stacked_team`)."""
