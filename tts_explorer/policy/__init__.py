"""Policy models: the text-level protocol and the local transformers backend."""

from .base import Completion, Policy, StopRequested
from .compute import ComputeMeter

__all__ = ["Completion", "Policy", "StopRequested", "ComputeMeter"]
