"""The training surface (TRAM): attackers changing which actions a learner samples as it trains."""

TRAM_KINDS = ("tram_var", "tram_j", "tram_random")
