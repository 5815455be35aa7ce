"""The instructions and the message that carry the sources and the question.

The user message is the template with ``{sources}`` and ``{question}`` filled in. The
default template puts the sources, each starting on a line ``[N] ...``, under a line
``Sources:``, then the question on a line starting with ``Question:``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from ..errors import VibesError

DEFAULT_SYSTEM = (
    "Answer the question using only the numbered sources in the user's message. After "
    "each statement, cite the sources it comes from by their numbers in square brackets, "
    "like [1] or [2][3]. If the sources do not answer the question, say that you do not "
    "know; do not guess and do not use anything else you know."
)
DEFAULT_TEMPLATE = "Sources:\n\n{sources}\n\nQuestion: {question}"
PLACEHOLDERS = ("{sources}", "{question}")
_PLACEHOLDER = re.compile(r"\{(sources|question)\}")
#: Citations: [3], and lists such as [1, 2] or [1; 4].
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def load_template(value: str | None) -> str:
    """The template: ``value`` itself when it holds a placeholder, else the file it names.
    Both placeholders are required: a template without ``{sources}`` would send no
    sources, one without ``{question}`` no question."""
    if value is None:
        return DEFAULT_TEMPLATE
    text = value
    if not any(p in value for p in PLACEHOLDERS) and "\n" not in value:
        try:
            with open(os.path.expanduser(value), encoding="utf-8") as file:
                text = file.read()
        except FileNotFoundError:
            raise VibesError(
                f"The template {value!r} is neither a file nor a text holding "
                "{sources} and {question}"
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise VibesError(f"Cannot read the template {value!r}: {reason}") from None
        except ValueError:  # a NUL in the name
            raise VibesError(
                f"The template {value!r} is neither a file nor a text holding "
                "{sources} and {question}"
            ) from None
    missing = [p for p in PLACEHOLDERS if p not in text]
    if missing:
        raise VibesError(f"The template must hold {' and '.join(missing)}")
    return text


def fill(template: str, sources: str, question: str) -> str:
    """``template`` with its placeholders replaced, in one pass (a question holding
    ``{sources}`` stays as it is)."""
    values = {"sources": sources, "question": question}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def messages(
    system: str | None,
    user: str,
    history: Sequence[dict[str, Any]] = (),
) -> list[dict[str, str]]:
    """The chat messages: the instructions, earlier turns (each question and answer), then
    the message with the sources and the question."""
    sent: list[dict[str, str]] = []
    instructions = DEFAULT_SYSTEM if system is None else system
    if instructions:
        sent.append({"role": "system", "content": instructions})
    for turn in history:
        if turn.get("question") and turn.get("answer"):
            sent.append({"role": "user", "content": str(turn["question"])})
            sent.append({"role": "assistant", "content": str(turn["answer"])})
    sent.append({"role": "user", "content": user})
    return sent


def citations(answer: str) -> list[int]:
    """The source numbers an answer cites, in the order first cited, each once."""
    found: list[int] = []
    for match in _CITATION.finditer(answer):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            value = int(number)
            if value not in found:
                found.append(value)
    return found
