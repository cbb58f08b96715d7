"""Answer patterns for text-entry keys: regular expressions that cannot hang the server.

Python's ``re`` backtracks, so a pattern like ``(a+)+b`` takes exponential time on a short
wrong answer ("catastrophic backtracking"). A key's pattern is therefore checked when it is
written, against a safe subset of the syntax and a worst-case budget, rather than timed out when
a candidate's answer is scored (``re`` has no timeout, and scoring must not depend on load):

- no backreferences, lookarounds or conditionals (they are what makes matching non-regular);
- a repeat of more than one occurrence (``*``, ``+``, ``{2,}``...) may repeat only one
  character or class (``[a-z]+``, ``\\d*``), never a group or an alternation, which is where
  exponential blow-up comes from; an optional group ``(...)?`` is allowed;
- the number of ways the pattern can split an answer of the item's maximum length (the product
  of each variable repeat's range, alternations summed) stays under :data:`MAX_PATHS`, which
  bounds the polynomial cases such as ``\\s*\\d+\\s*``;
- the pattern is at most :data:`MAX_PATTERN_LENGTH` characters.

Answers are matched with ``fullmatch`` on input bounded by the item's maximum length.
"""
from __future__ import annotations

import functools
import re
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from microcred.errors import Invalid

MAX_PATTERN_LENGTH = 200
MAX_PATHS = 10**7

_ONE_CHAR = {C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN}
_FORBIDDEN = {C.GROUPREF: "backreferences", C.GROUPREF_EXISTS: "conditional groups",
              C.ASSERT: "lookaheads and lookbehinds", C.ASSERT_NOT: "lookaheads and lookbehinds"}
_REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", C.MAX_REPEAT)}


class UnsafePatternError(Invalid, ValueError):
    """A pattern is invalid or could take too long to match; the message says why."""


def check_pattern(pattern: str, max_input: int) -> re.Pattern[str]:
    """Compile ``pattern`` if it is in the safe subset for answers of up to ``max_input``
    characters; else raise :class:`UnsafePatternError` naming the problem."""
    if not isinstance(pattern, str) or not pattern:
        raise UnsafePatternError("the pattern is empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePatternError(
            f"the pattern has {len(pattern)} characters; at most {MAX_PATTERN_LENGTH}")
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        raise UnsafePatternError(f"the pattern is not a valid regular expression: {exc}") from None
    paths = _paths(list(parsed), max_input)
    if paths > MAX_PATHS:
        raise UnsafePatternError(
            f"the pattern could try about {paths:.1e} ways to match an answer of {max_input} "
            f"characters (at most {MAX_PATHS:.0e}); use fewer variable repeats such as * and +")
    return _compiled(pattern)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _paths(seq: list, max_input: int) -> int:
    """An upper bound of the ways ``seq`` can split an input (the backtracking it can cause)."""
    total = 1
    for op, av in seq:
        if op in _FORBIDDEN:
            raise UnsafePatternError(f"{_FORBIDDEN[op]} are not allowed in answer patterns")
        if op in _REPEATS:
            low, high, body = av
            body = list(body)
            if high == low:  # a fixed count: the body's own paths, that many times
                total *= _paths(body, max_input) ** max(1, min(low, max_input))
                continue
            single = len(body) == 1 and body[0][0] in _ONE_CHAR
            if not single and high > 1:
                raise UnsafePatternError(
                    "a repeat such as *, + or {2,} may repeat one character or class "
                    "(like [a-z]+), not a group: repeated groups can take exponential time")
            span = min(high, max_input) - min(low, max_input) + 1
            total *= span * (1 if single else _paths(body, max_input))
        elif op == C.SUBPATTERN:
            total *= _paths(list(av[-1]), max_input)
        elif op == C.ATOMIC_GROUP:
            total *= _paths(list(av), max_input)
        elif op == C.BRANCH:
            total *= sum(_paths(list(alt), max_input) for alt in av[1])
        if total > MAX_PATHS * 10:
            return total
    return total
