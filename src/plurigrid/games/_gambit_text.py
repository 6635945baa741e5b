"""The lexical layer shared by Gambit's .nfg and .efg formats: tokens with line numbers, exact numbers, quoting.

Conventions of the formats (Gambit's documentation, "Game representation formats"): whitespace is not significant;
labels are double-quoted with \\" for a quote inside; numbers are integers, decimals or rationals `p/q`, all exact
(0.1 and 1/10 are the same number). Commas may separate payoffs; they are read as whitespace. Exponents (1e-3) are
accepted as exact decimals too. Every error is one line: `FILE:LINE: what was expected`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from plurigrid.errors import UsageError

_TOKEN = re.compile(r"""
    (?P<space>[\s,]+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>[+-]?(?:\d+/\d+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,4})?)(?![\w.]))
  | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<brace>[{}])
""", re.VERBOSE | re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NUMBER_CHARS = 1000  # longer numerals are refused (Python's int() refuses over 4,300 digits anyway)
MAX_MAGNITUDE = Fraction(10) ** 300  # beyond this a payoff has no float (the largest is about 1.8e308)


class GameFileError(UsageError):
    """A Gambit file that does not follow its format: `FILE:LINE: what was expected`."""


@dataclass(frozen=True)
class Token:
    kind: str  # "string", "number", "word", "{" or "}"
    text: str  # a string's text unescaped; otherwise as written
    line: int


class Tokens:
    """A cursor over a file's tokens that reports every mismatch as a GameFileError at the token's line."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.tokens = _tokenize(text, path)
        self.pos = 0
        self.last_line = text.rstrip().count("\n") + 1  # where "the end of the file" is reported

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def at(self, kind: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind

    def take(self, kind: str, what: str) -> Token:
        """The next token, which must be of `kind` (`what` says what was expected, for the error)."""
        token = self.peek()
        if token is None or token.kind != kind:
            raise self.error(f"expected {what}, found {_describe(token)}", token)
        self.pos += 1
        return token

    def word(self, word: str, what: str) -> Token:
        token = self.take("word", what)
        if token.text != word:
            raise self.error(f"expected {what}, found {_describe(token)}", token)
        return token

    def string(self, what: str) -> str:
        return self.take("string", what).text

    def number(self, what: str) -> Fraction:
        return parse_number(self.take("number", what), self)

    def integer(self, what: str, low: int, high: int | None = None) -> int:
        """An integer in [low, high] (no upper bound when high is None)."""
        token = self.take("number", what)
        if not re.fullmatch(r"[+-]?\d{1,18}", token.text) or int(token.text) < low or (high is not None and int(token.text) > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise self.error(f"expected {what} (an integer {bound}), found {token.text}", token)
        return int(token.text)

    def strings_in_braces(self, what: str) -> list[str]:
        """`{ "a" "b" ... }`."""
        self.take("{", f"{{ opening the {what}")
        values = []
        while not self.at("}"):
            values.append(self.string(f"a quoted label in the {what} or }}"))
        self.pos += 1
        return values

    def end(self) -> None:
        token = self.peek()
        if token is not None:
            raise self.error(f"expected the end of the file, found {_describe(token)}", token)

    def error(self, message: str, token: Token | None = None) -> GameFileError:
        line = token.line if token is not None else self.last_line
        return GameFileError(f"{self.path}:{line}: {message}")


def parse_number(token: Token, tokens: Tokens) -> Fraction:
    """An exact number: integer, decimal (with optional exponent) or rational p/q with q > 0."""
    if len(token.text) > MAX_NUMBER_CHARS:
        raise tokens.error(f"expected a number of at most {MAX_NUMBER_CHARS} characters, found one of {len(token.text)}", token)
    num, slash, den = token.text.partition("/")
    if slash:
        if int(den) == 0:
            raise tokens.error(f"expected a number, found {token.text} (a zero denominator)", token)
        value = Fraction(int(num), int(den))
    else:
        value = Fraction(Decimal(token.text))
    if abs(value) > MAX_MAGNITUDE:
        raise tokens.error(f"expected a number of magnitude at most 1e300 (payoffs are also used as floats), found "
                           f"{token.text if len(token.text) <= 40 else token.text[:37] + '...'}", token)
    return value


def format_number(value: Fraction | float) -> str:
    """A number as the formats write it: an integer, p/q, or a decimal without exponent for a float."""
    if isinstance(value, Fraction):
        return str(value)
    text = format(Decimal(repr(float(value))), "f")
    return text[:-2] if text.endswith(".0") else text


def quote(text: str) -> str:
    """A label in double quotes, with backslashes and quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tokenize(text: str, path: str) -> list[Token]:
    tokens = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise GameFileError(f"{path}:{line}: unexpected character {text[pos]!r}; expected a quoted label, a number, "
                                f"{{ or }}" + (" (an unterminated label?)" if text[pos] == '"' else ""))
        kind = match.lastgroup
        value = match.group()
        if kind == "string":
            tokens.append(Token("string", _ESCAPE.sub(r"\1", value[1:-1]), line))
        elif kind == "brace":
            tokens.append(Token(value, value, line))
        elif kind != "space":
            tokens.append(Token(str(kind), value, line))
        line += value.count("\n")
        pos = match.end()
    return tokens


def shown(label: str) -> str:
    """A label quoted for a one-line message: control characters escaped, cut to 40 characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], label)
    return '"' + (text if len(text) <= 40 else text[:37] + "...") + '"'  # for people, not a file: no escaping


def _describe(token: Token | None) -> str:
    if token is None:
        return "the end of the file"
    return f"the label {shown(token.text)}" if token.kind == "string" else token.text
