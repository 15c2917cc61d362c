"""Fixtures shared by the unit tests: the local stand-ins, each on a free port of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_stack.graph_sink import GraphSink
from local_stack.mistral_standin import MistralStandIn
from tests.support import STANDIN_KEY, STANDIN_TOKEN


@pytest.fixture
def sink() -> Iterator[GraphSink]:
    """The local Graph sink, accepting only STANDIN_TOKEN."""
    running = GraphSink(STANDIN_TOKEN).start()
    yield running
    running.stop()


@pytest.fixture
def standin() -> Iterator[MistralStandIn]:
    """The stand-in model, accepting only STANDIN_KEY."""
    running = MistralStandIn(STANDIN_KEY).start()
    yield running
    running.stop()
