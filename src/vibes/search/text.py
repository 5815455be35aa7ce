"""Words for full-text search: a query's terms, a safe FTS5 expression, and snippets.

The full-text index is SQLite FTS5 (``unicode61``, optionally behind ``porter``).
:func:`query_terms` splits a user's query the way ``unicode61`` splits text;
:func:`fts5_expression` turns the terms into a MATCH expression that is never a syntax
error; :func:`snippet` picks the fragment of a text that best shows why it matched,
comparing words through :func:`normalise` and :func:`stem` so that ``running`` marks
``runs`` and ``resume`` marks ``Résumé``.

Standard library only, and cheap to import.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cached_property, lru_cache
from itertools import islice

#: At most this many distinct terms come out of one query, so a huge query stays fast
#: (and its MATCH expression short); reading stops once they are found.
MAX_TERMS = 64
#: At most this many words of a query are read, repeated ones included.
MAX_QUERY_WORDS = 4096
#: A snippet examines at most this many candidate words (in text order), so a query
#: term that fills a huge text cannot make it slow; the best window is chosen among them.
MAX_SNIPPET_CANDIDATES = 10_000
#: Marks a snippet that starts or ends inside the text.
ELLIPSIS = "\u2026"

# A word of unspaced text (CJK, a long URL) counts as one word per this many characters,
# and a snippet's context reaches at most this many characters per word.
_CHARS_PER_WORD = 12

# FTS5's unicode61 tokenizer: token characters are the Unicode categories L*, N* and Co
# (private use); everything else separates tokens, except that the combining diacritics
# below (SQLite's own list) continue a token they follow, so decomposed "é" stays in it.
_PRIVATE_USE = "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"
_DIACRITICS = "\u0300-\u0304\u0306-\u030c\u030f\u0311\u031b\u0323-\u0328\u032d\u032e\u0330\u0331"
_WORD_CHARS = rf"\w{_PRIVATE_USE}{_DIACRITICS}"
# Longer words are not stemmed (as in FTS5's porter), nor looked at for folding.
_LONGEST_WORD = 64


class _Patterns:
    """The regular expressions, compiled on first use: importing stays cheap."""

    @cached_property
    def token(self) -> re.Pattern[str]:
        """A word as unicode61 sees it."""
        return re.compile(rf"(?:[^\W_]|[{_PRIVATE_USE}])(?:[^\W_]|[{_PRIVATE_USE}{_DIACRITICS}])*")

    # The same on a snippet's lower-cased copy of the text, where "_" is already a
    # space: one character class each, several times faster on long texts.
    @cached_property
    def word(self) -> re.Pattern[str]:
        return re.compile(rf"[\w{_PRIVATE_USE}][{_WORD_CHARS}]*")

    @cached_property
    def word_rest(self) -> re.Pattern[str]:
        return re.compile(rf"[{_WORD_CHARS}]*")

    @cached_property
    def word_char(self) -> re.Pattern[str]:
        return re.compile(rf"[{_WORD_CHARS}]")

    @cached_property
    def chunk(self) -> re.Pattern[str]:
        return re.compile(r"\S+")

    @cached_property
    def spaces(self) -> re.Pattern[str]:
        return re.compile(r"\s+")

    @cached_property
    def fts5_unsafe(self) -> re.Pattern[str]:
        """What FTS5 cannot take in a string: NUL ends it, lone surrogates are no UTF-8."""
        return re.compile("[\x00\ud800-\udfff]")


_RE = _Patterns()

# How a snippet finds the words of a long text that may be occurrences, fast: it
# searches a lower-cased copy of the text, where letters that normalise to one other
# letter are that letter (é is e, й is и: _FOLDS), for each query stem's first letters;
# and it looks one by one at the words holding any other character that normalising
# changes (ß, final sigma, ligatures, combining marks ...). Characters in these ranges
# need neither: lower-case characters that normalise() leaves as they are (up to NFC),
# or that are never part of a word. Only a speed-up: a test checks them.
_AS_IS_RANGES = (
    "\u0080-\u00a9"  # Latin-1 punctuation and symbols
    "\u03b1-\u03c1\u03c3-\u03c9"  # Greek lower case, no accents, no final sigma
    "\u0430-\u0438\u043a-\u044f"  # Cyrillic а-я but й
    "\u05d0-\u05ea"  # Hebrew letters
    "\u0627-\u063a\u0641-\u064a"  # Arabic letters
    "\u0905-\u0928\u092a-\u0930\u0935-\u0939"  # Devanagari letters without nukta
    "\u0e01-\u0e32"  # Thai
    "\u2000-\u206f\u2190-\u245f\u2500-\u2bff"  # punctuation, arrows, symbols, box drawing
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7a3"  # Hangul syllables
    "\ue000-\uf8ff"  # private use
)
# Where the letters are that normalise to one other letter (accented Latin, Greek and
# Cyrillic, kana with voicing marks, fullwidth and circled forms, superscripts).
_FOLDS = (
    (0x00C0, 0x024F),
    (0x0370, 0x04FF),
    (0x1E00, 0x1FFF),
    (0x2070, 0x209F),
    (0x2460, 0x24FF),
    (0x3040, 0x30FF),
    (0xFF00, 0xFFEF),
)

#: English function words left out of a query unless it has nothing else: ~155, and the
#: pieces contractions split into (don't gives don and t).
STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at
    be because been before being below between both but by
    can cannot could did do does doing done down during
    each either else ever every few for from further
    had has have having he her here hers herself him himself his how
    i if in into is it its itself just
    may me might more most much must my myself
    no nor not now of off often on once only or other others ought our ours ourselves
    out over own per please quite rather
    same shall she should so some such than that the their theirs them themselves then
    there these they this those though through thus to too
    under until up upon us very
    was we were what whatever when where whether which while who whom whose why will
    with within without would yet you your yours yourself yourselves
    s t d ll m re ve don doesn didn isn aren wasn weren hasn haven hadn wouldn shouldn
    couldn
    """.split()
)


def query_terms(text: str, *, keep_stop_words: bool = False) -> list[str]:
    """The distinct words of a user's query for full-text search, in order of appearance.

    Words are split as SQLite FTS5's ``unicode61`` tokenizer splits them: letters and
    digits (Unicode L*, N*, and Co) make words, anything else separates them, so
    ``ERR_CONNECTION_RESET`` gives ``err connection reset`` and ``3.11`` gives ``3 11``;
    operators and quotes are just separators or words. Each is case-folded as FTS5 folds
    (simple case folding: ``ß`` stays ``ß``, ``Σ`` becomes ``σ``); accents are kept (the
    index's tokenizer removes them from the query as from the text). English
    :data:`STOP_WORDS` are dropped unless ``keep_stop_words`` is set or every word is
    one. At most :data:`MAX_TERMS` terms come back, from at most :data:`MAX_QUERY_WORDS`
    words read, so a huge query stays fast. No word characters at all: ``[]``.

    SQLite's tables are Unicode 6.1, where characters assigned since (newer emoji, new
    scripts) count as word characters; here they separate words, so such a word is left
    out of the query rather than searched.
    """
    content: dict[str, None] = {}
    stop: dict[str, None] = {}
    for read, match in enumerate(_RE.token.finditer(text)):
        if read >= MAX_QUERY_WORDS:
            break
        term = _fts5_fold(match.group())
        if keep_stop_words or term not in STOP_WORDS:
            content[term] = None
            if len(content) >= MAX_TERMS:
                break
        elif len(stop) < MAX_TERMS:
            stop[term] = None
    return list(content or stop)


def fts5_expression(terms: Sequence[str]) -> str:
    """The FTS5 MATCH expression for documents holding any of ``terms``.

    Each term becomes a double-quoted FTS5 string (inner ``"`` doubled) and they are
    joined by ``OR``; BM25 then ranks documents with more, and rarer, terms first. In an
    FTS5 string every character is plain text for the table's tokenizer (``AND``,
    ``NEAR``, ``*``, ``^``, ``:``, ``-``, parentheses are not operators there), so any
    input is safe: NUL and lone surrogates, which SQLite cannot take, become spaces.
    Without terms it is ``""``, an empty phrase that matches nothing.
    """
    phrases: dict[str, None] = {}
    for term in terms:
        clean = _RE.fts5_unsafe.sub(" ", term).strip()
        if clean:
            phrases['"' + clean.replace('"', '""') + '"'] = None
    return " OR ".join(phrases) if phrases else '""'


def normalise(word: str) -> str:
    """``word`` for comparison: compatibility-decomposed (NFKD), without combining marks,
    case-folded. ``Résumé`` -> ``resume``, ``Straße`` -> ``strasse``, ``ﬁle`` -> ``file``."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def stem(word: str) -> str:
    """A normalised word without its English inflection: step 1 of Porter's stemmer.

    Plurals and third persons (``sses`` -> ``ss``, ``ies`` -> ``i``, ``s`` -> ``''``),
    ``eed`` -> ``ee`` after a consonant-vowel pair, ``ed`` and ``ing`` after a vowel
    (then ``at``/``bl``/``iz`` gain an ``e``, a doubled consonant other than l/s/z loses
    one, a short consonant-vowel-consonant stem gains an ``e``), and a final ``y`` after a
    vowel becomes ``i``. So ``running``, ``runs`` and ``run`` give ``run``; ``libraries``
    and ``library`` give ``librari``. Words of one or two letters, or of more than 64
    (like FTS5's ``porter``), stay as they are. All but the stem's last letter are the
    word's first letters.
    """
    if not 2 < len(word) <= _LONGEST_WORD:
        return word
    if word.endswith(("sses", "ies")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("eed"):
        if _measure(word[:-3]) > 0:
            word = word[:-1]
    else:
        for suffix in ("ed", "ing"):
            if word.endswith(suffix) and _has_vowel(word[: -len(suffix)]):
                word = word[: -len(suffix)]
                if word.endswith(("at", "bl", "iz")):
                    word += "e"
                elif _ends_double_consonant(word) and word[-1] not in "lsz":
                    word = word[:-1]
                elif _measure(word) == 1 and _ends_cvc(word):
                    word += "e"
                break
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    return word


def snippet(
    text: str | None,
    terms: Sequence[str],
    *,
    marks: tuple[str, str] = ("**", "**"),
    words: int = 32,
) -> str | None:
    """The fragment of ``text`` that best shows the query's ``terms``, terms marked.

    The fragment is a window of about ``words`` words (runs of non-space characters; an
    unspaced run counts one word per 12 characters) holding the most distinct terms;
    ties go to more occurrences, then to the earliest. The window is centred on its
    terms; every occurrence of a term in it is wrapped in ``marks`` (the text is not
    escaped); whitespace is collapsed to single spaces; ``…`` shows where it cuts the
    text. A word is an occurrence when its :func:`stem` of :func:`normalise` is a term's,
    as FTS5's ``porter`` tokenizer would match it, ignoring case and accents.

    Without any occurrence it is the start of the text (the first ``words`` words).
    ``None`` only for a text that is empty or blank. One pass over the text, and at most
    :data:`MAX_SNIPPET_CANDIDATES` candidate words looked at: a 1 MB text takes
    milliseconds.
    """
    if not text or text.isspace():
        return None
    if isinstance(terms, str):  # one term, not its letters
        terms = [terms]
    width = max(1, words)
    wanted = _term_stems(terms)
    hay = _lowered(text)
    verdicts: dict[str, int] = {}
    found = _occurrences(hay, wanted, verdicts) if wanted else []
    if not found:
        first = len(text) - len(text.lstrip())
        end, _ = _forward(text, hay, first, width, own=False)
        return _render(text, hay, (first, end), wanted, verdicts, marks)

    # Word positions of the occurrences: whitespace runs between them, where a long
    # unspaced stretch counts one word per _CHARS_PER_WORD characters; gaps of a whole
    # window or more count as a window (nothing spans them), and need no counting.
    far = _CHARS_PER_WORD * width
    position = [0] * len(found)
    for k in range(1, len(found)):
        gap_start, gap_end = found[k - 1][0], found[k][0]
        if gap_end - gap_start >= far:
            step = width
        else:
            gap = text[gap_start:gap_end]
            runs = len(gap.split()) - 1 + gap[-1].isspace()
            step = min(width, max(runs, len(gap) // _CHARS_PER_WORD))
        position[k] = position[k - 1] + step

    # The best window starts at an occurrence: slide its end along, one pass.
    counts = [0] * len(wanted)
    distinct = 0
    best = (0, 0)
    best_first = best_last = 0
    last = 0
    for first in range(len(found)):
        while last < len(found) and position[last] - position[first] < width:
            term = found[last][2]
            distinct += counts[term] == 0
            counts[term] += 1
            last += 1
        if (distinct, last - first) > best:
            best = (distinct, last - first)
            best_first, best_last = first, last - 1
        term = found[first][2]
        counts[term] -= 1
        distinct -= counts[term] == 0

    # Centre it: share the words left over between the two sides.
    spare = width - (position[best_last] - position[best_first] + 1)
    lead = spare // 2
    start, used = _backward(text, hay, found[best_first][0], lead)
    trail = spare - used
    end, used_after = _forward(text, hay, found[best_last][1], trail, own=True)
    if used_after < trail and used == lead:
        start, _ = _backward(text, hay, found[best_first][0], lead + trail - used_after)
    return _render(text, hay, (start, end), wanted, verdicts, marks)


# --- query side ---------------------------------------------------------------------


def _fts5_fold(token: str) -> str:
    """``token`` case-folded like unicode61: character by character, one for one."""
    if token.isascii():
        return token.lower()
    return "".join(map(_fold_char, token))


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    for folded in (char.casefold(), char.lower()):
        if len(folded) == 1:
            return folded
    return char


# --- the stemmer's measures (Porter's [C](VC)^m[V]) ---------------------------------


def _consonants(word: str) -> list[bool]:
    """For each letter, whether it is a consonant: not a vowel, and ``y`` only at the
    start or after a vowel."""
    flags: list[bool] = []
    previous = True
    for i, char in enumerate(word):
        previous = char not in "aeiou" and not (char == "y" and i > 0 and previous)
        flags.append(previous)
    return flags


def _measure(word: str) -> int:
    """m: how many vowel-consonant sequences ``word`` has."""
    flags = _consonants(word)
    return sum(1 for i in range(1, len(flags)) if flags[i] and not flags[i - 1])


def _has_vowel(word: str) -> bool:
    return not all(_consonants(word))


def _ends_double_consonant(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _consonants(word)[-1]


def _ends_cvc(word: str) -> bool:
    """Consonant, vowel, consonant at the end, the last not w, x or y (``hop``, ``fil``)."""
    if len(word) < 3 or word[-1] in "wxy":
        return False
    flags = _consonants(word)
    return flags[-3] and not flags[-2] and flags[-1]


# --- snippets -----------------------------------------------------------------------


def _term_stems(terms: Sequence[str]) -> dict[str, int]:
    """Each distinct stem of the terms' words, numbered."""
    stems: dict[str, int] = {}
    for term in terms:
        for match in _RE.token.finditer(term):
            key = stem(normalise(match.group()))
            if key not in stems and len(stems) < MAX_TERMS:
                stems[key] = len(stems)
    return stems


def _lowered(text: str) -> str:
    """``text`` lower-cased character for character (offsets carry over), ``_`` a space."""
    if text.isascii():
        return text.lower().replace("_", " ")
    lowered = text.replace("\u0130", "i").lower()  # İ is the one that lowers to two
    if len(lowered) != len(text):  # a later Unicode: the slow way
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
    return lowered.replace("_", " ")


def _occurrences(
    hay: str, wanted: dict[str, int], verdicts: dict[str, int]
) -> list[tuple[int, int, int]]:
    """(start, end, term number) of each word of ``hay`` whose stem is wanted, in order.

    Candidates are the words that start with a wanted stem (less a last ``e`` or ``i``,
    which stemming may have made), found in a copy of ``hay`` with accented letters
    folded (:func:`_folded`), and, in a text that is not ASCII, the words holding any
    other character that normalising changes. Each search stops after its share of
    MAX_SNIPPET_CANDIDATES, and all of them stop where the first one did.
    """
    prefixes: set[str] = set()
    for key in wanted:
        prefix = key[:-1] if len(key) > 1 and key[-1] in "ei" else key
        prefixes.update((prefix, unicodedata.normalize("NFC", prefix)))
    prefixes.discard("")
    share = max(1, MAX_SNIPPET_CANDIDATES // (len(prefixes) + 1))
    fold = not hay.isascii()
    plain = _folded(hay) if fold else hay
    searches = [_starting_with(plain, _starting_with_pattern(prefix), share) for prefix in prefixes]
    if fold:
        searches.append(_to_fold(hay, {key[0] for key in wanted if key}, share))
    cutoff = min(stop for _, stop in searches)
    candidates = sorted({span for spans, _ in searches for span in spans if span[0] <= cutoff})
    found: list[tuple[int, int, int]] = []
    for start, end in candidates:
        term = _verdict(hay[start:end], wanted, verdicts)
        if term >= 0:
            found.append((start, end, term))
    return found


def _verdict(word: str, wanted: dict[str, int], verdicts: dict[str, int]) -> int:
    """The number of the term ``word`` is an occurrence of, or -1; remembered per word."""
    term = verdicts.get(word)
    if term is None:
        term = verdicts[word] = wanted.get(stem(normalise(word)), -1)
    return term


@lru_cache(maxsize=1)
def _folding() -> tuple[dict[str, str], re.Pattern[str], re.Pattern[str]]:
    """The characters in _FOLDS that normalise to one other letter, with that letter; the
    pattern of one of them; and the pattern of a character that normalising changes
    otherwise. Made once, in milliseconds."""
    letters: dict[str, str] = {}
    for low, high in _FOLDS:
        for code in range(low, high + 1):
            folded = normalise(chr(code))
            if len(folded) == 1 and folded != chr(code):
                letters[chr(code)] = folded
    listed = _char_class(sorted(letters))
    return (
        letters,
        re.compile(f"[{listed}]"),
        re.compile(f"[^\\x00-\\x7f{_AS_IS_RANGES}{listed}]"),
    )


def _char_class(chars: list[str]) -> str:
    """The inside of a regex character class holding ``chars`` (sorted), as ranges."""
    ranges: list[list[int]] = []
    for code in map(ord, chars):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges)


def _folded(hay: str) -> str:
    """``hay`` with each letter that normalises to one other letter replaced by it (é by
    e, й by и): one pass to find which occur, one replace for each that does."""
    letters, one_letter, _ = _folding()
    at = 0
    while match := one_letter.search(hay, at):
        hay = hay.replace(match.group(), letters[match.group()])
        at = match.start()
    return hay


@lru_cache(maxsize=256)
def _starting_with_pattern(prefix: str) -> re.Pattern[str]:
    """Words starting with ``prefix``: the literal first (the regex engine searches for
    it fast), then a look back past it for a word character just before."""
    before = rf"(?<![{_WORD_CHARS}](?s:.){{{len(prefix)}}})"
    return re.compile(re.escape(prefix) + before + rf"[{_WORD_CHARS}]*")


def _starting_with(
    hay: str, pattern: re.Pattern[str], most: int
) -> tuple[list[tuple[int, int]], int]:
    """Spans of the first ``most`` words ``pattern`` finds; where the search stopped
    (the end of ``hay`` if it did not)."""
    spans = [m.span() for m in islice(pattern.finditer(hay), most)]
    return spans, spans[-1][0] if len(spans) == most else len(hay)


@lru_cache(maxsize=4096)
def _first_letter(char: str) -> str:
    return normalise(char)[:1]


def _to_fold(hay: str, firsts: set[str], most: int) -> tuple[list[tuple[int, int]], int]:
    """Spans of the first ``most`` words holding a character that normalising changes
    (other than one letter into another) and starting with a letter in ``firsts``
    (normalised); where the search stopped."""
    spans: list[tuple[int, int]] = []
    backwards = ""  # hay reversed, to find where a word starts with one regex match
    end = 0
    is_word_char = _RE.word_char.match
    for match in _folding()[2].finditer(hay):
        at = match.start()
        if at < end or not is_word_char(hay, at):
            continue
        if not backwards:
            backwards = hay[::-1]
        back = len(hay) - at
        before = _word_end(backwards, back, back + _LONGEST_WORD) - back
        end = _word_end(hay, at)
        start = at - before
        if before < _LONGEST_WORD and _first_letter(hay[start]) in firsts:
            spans.append((start, end))
            if len(spans) == most:
                return spans, start
    return spans, len(hay)


def _word_end(hay: str, at: int, limit: int | None = None) -> int:
    """Where the run of word characters from ``at`` ends (before ``limit``)."""
    match = _RE.word_rest.match(hay, at, len(hay) if limit is None else limit)
    return match.end() if match else at


def _backward(text: str, hay: str, pos: int, words: int) -> tuple[int, int]:
    """Where a fragment starts that ends at ``pos`` with ``words`` words before the one
    at ``pos``; and how many words it got (fewer at the start of the text)."""
    low = max(0, pos - _CHARS_PER_WORD * (words + 1))
    spans = [m.span() for m in _RE.chunk.finditer(text, low, pos)]
    start = pos
    if spans and spans[-1][1] == pos:  # the part of pos's own word before it
        start = spans.pop()[0]
    used = min(words, len(spans))
    if used:
        start = spans[-used][0]
    if start == low > 0 and not text[low - 1].isspace():  # cut inside a long word
        start = _snap_forward(hay, start, pos)
    return start, used


def _forward(text: str, hay: str, pos: int, words: int, *, own: bool) -> tuple[int, int]:
    """Where a fragment ends that starts at ``pos`` with ``words`` words (after the rest
    of the word ``pos`` is in, with ``own``); and how many words it got."""
    limit = min(len(text), pos + _CHARS_PER_WORD * (words + 1))
    end = pos
    used = 0
    for match in _RE.chunk.finditer(text, pos, limit):
        if own and match.start() == pos:
            end = match.end()
            continue
        if used == words:
            break
        end = match.end()
        used += 1
    if end == limit < len(text) and not text[limit].isspace():  # cut inside a long word
        end = _snap_back(hay, pos, end)
    return end, used


def _snap_forward(hay: str, start: int, limit: int) -> int:
    """The first word start after a separator in [start, limit), else ``start``."""
    at = start
    while at < limit and _RE.word_char.match(hay, at):
        at += 1
    while at < limit and not _RE.word_char.match(hay, at):
        at += 1
    return at if at < limit else start


def _snap_back(hay: str, low: int, end: int) -> int:
    """The last word end before a separator in (low, end], else ``end``."""
    at = end
    while at > low and _RE.word_char.match(hay, at - 1):
        at -= 1
    while at > low and not _RE.word_char.match(hay, at - 1):
        at -= 1
    return at if at > low else end


def _render(
    text: str,
    hay: str,
    span: tuple[int, int],
    wanted: dict[str, int],
    verdicts: dict[str, int],
    marks: tuple[str, str],
) -> str:
    """text[start:end] with occurrences marked, whitespace collapsed, cuts shown."""
    start, end = span
    pieces: list[str] = []
    at = start
    if wanted:
        for match in _RE.word.finditer(hay, start, end):
            if _verdict(match.group(), wanted, verdicts) >= 0:
                pieces.append(_RE.spaces.sub(" ", text[at : match.start()]))
                pieces.append(marks[0] + text[match.start() : match.end()] + marks[1])
                at = match.end()
    pieces.append(_RE.spaces.sub(" ", text[at:end]))
    pieces[0] = pieces[0].lstrip()
    pieces[-1] = pieces[-1].rstrip()
    before = ELLIPSIS if start > 0 and not text[:start].isspace() else ""
    after = ELLIPSIS if end < len(text) and not text[end:].isspace() else ""
    return before + "".join(pieces) + after
