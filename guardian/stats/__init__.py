"""Anytime-valid statistics for canary judgment: pure, per event, a few numbers of state.

``RateTest`` compares two rates (errors out of requests) and ``ShiftTest`` a
latency-like gauge (per-sample p95) of the canary with its baseline. Both may
be checked after every event without inflating false rollbacks: each is an
e-process, and Ville's inequality bounds the chance that a healthy canary is
ever called ``worse`` by 1 - confidence, however long it is watched. Each
says ``worse``, ``not_worse`` or ``inconclusive`` and hands out ``Evidence``.

A test object holds the hypothesis (the effect that matters, the confidence)
and is shared; a state object holds one canary's evidence (a few floats,
fixed in size) and is what the engine keeps per rule and series. No I/O, no
clock (event time is passed in), no numpy: plain floats and ``math``.
"""

from guardian.stats.evidence import Estimate, Evidence, Verdict
from guardian.stats.pairing import CountPairing, LatestSample, SpanSums
from guardian.stats.rates import RateState, RateTest
from guardian.stats.shift import ShiftState, ShiftTest

__all__ = [
    "CountPairing",
    "Estimate",
    "Evidence",
    "LatestSample",
    "RateState",
    "RateTest",
    "ShiftState",
    "ShiftTest",
    "SpanSums",
    "Verdict",
]
