"""The demo world: a simulated B2B funnel for the demo, the tests and the benchmarks.

>>> from leadscore.demo import generate_world
>>> world = generate_world(200, seed=7)
>>> world.leads.num_rows
200

:func:`generate_world` builds a small world in memory; :func:`write_world` streams
any size to ``leads``/``events``/``outcomes`` files plus ``world.json``. Both give the
same rows for the same arguments.
"""

from __future__ import annotations

from leadscore.demo.world import (
    DEFAULT_END,
    GENERATOR_VERSION,
    TARGET_COUNTRIES,
    TARGET_INDUSTRIES,
    DemoWorld,
    generate_world,
)
from leadscore.demo.writer import FORMATS, WorldSummary, write_world

__all__ = [
    "DEFAULT_END",
    "FORMATS",
    "GENERATOR_VERSION",
    "TARGET_COUNTRIES",
    "TARGET_INDUSTRIES",
    "DemoWorld",
    "WorldSummary",
    "generate_world",
    "write_world",
]
