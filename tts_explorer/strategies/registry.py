"""The strategy registry: name -> Strategy, with the attributes callers read instead of
testing names; filled by the package (strategies/__init__.py). Unknown names list the valid ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from ..config import SearchConfig
from ..errors import UserError


@dataclass(frozen=True)
class Strategy:
    name: str
    run: Callable  # generator function(ctx) -> events
    uses_scorer: bool
    fixed: tuple[tuple[str, object], ...] = ()  # settings this strategy always uses
    label: str = ""
    on_page: bool = True  # offered in the web page's strategy list
    width_divides: bool = False  # N must be a multiple of the beam width M
    from_chains: bool = False  # eval reads its rows at every budget off one set of independent chains
    baseline: bool = False  # no search: a larger model's rows of it are the reference lines to match
    choosable: bool = True  # the compute-optimal table may name it for a budget
    # it grows only nodes it has not pruned, so the steps all of them share are final
    # (tree.settled_nodes: the API streams them early); not so where chains start later from the root
    settles: bool = True

    def adjust(self, config: SearchConfig) -> SearchConfig:
        """The settings this strategy runs with (its fixed ones applied), checked against its rules."""
        config = dataclasses.replace(config, **dict(self.fixed), strategy=self.name) if self.fixed else config
        if self.width_divides:
            if config.beam_width > config.n:
                raise UserError(f"beam width M={config.beam_width} is larger than N={config.n}")
            if config.n % config.beam_width:
                raise UserError(f"N={config.n} must be a multiple of the beam width M={config.beam_width}")
        return config


STRATEGIES: dict[str, Strategy] = {}  # filled by strategies/__init__.py


def is_baseline(name: str) -> bool:
    """Whether a strategy named in a results file (maybe not one of ours) is a no-search baseline."""
    return name in STRATEGIES and STRATEGIES[name].baseline


def is_choosable(name: str) -> bool:
    """Whether `auto` can run a strategy named in a results file (maybe not one of ours)."""
    return name in STRATEGIES and STRATEGIES[name].choosable


def get_strategy(name) -> Strategy:
    if not isinstance(name, str) or name not in STRATEGIES:
        raise UserError(f"unknown strategy {str(name)[:40]!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def configure(config: SearchConfig) -> SearchConfig:
    """The settings a search runs with: its strategy's, checked (UserError with one line)."""
    return get_strategy(config.strategy).adjust(config)
