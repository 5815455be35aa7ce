"""Questions answered from a collection (retrieval-augmented generation).

:func:`ask` retrieves the passages that best match a question (:mod:`.retrieve`), numbers
them and fits them into a token budget (:mod:`.pack`), sends them with instructions to cite
them (:mod:`.prompt`) to a chat model, and returns the :class:`Answer` with its sources.
:mod:`.history` keeps the conversations ``vibes ask --continue`` follows up on.
"""

from __future__ import annotations

from .answer import Answer, Prepared, StreamingAnswer, ask, prepare
from .pack import DEFAULT_BUDGET, Source
from .prompt import DEFAULT_SYSTEM, DEFAULT_TEMPLATE
from .retrieve import DEFAULT_CONTEXT, DEFAULT_MIN_SCORE, DEFAULT_MODE, DEFAULT_N, AskWarning

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_CONTEXT",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_MODE",
    "DEFAULT_N",
    "DEFAULT_SYSTEM",
    "DEFAULT_TEMPLATE",
    "Answer",
    "AskWarning",
    "Prepared",
    "Source",
    "StreamingAnswer",
    "ask",
    "prepare",
]
