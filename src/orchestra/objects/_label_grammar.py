"""The label selector string grammar (k8s.io/apimachinery/pkg/labels/selector.go): a lexer
and a recursive descent parser that mirror Kubernetes', so that the same inputs fail with
the same messages (``found ',', expected: identifier``).
"""

from __future__ import annotations

from typing import Final

from orchestra.objects._names import label_key_error
from orchestra.objects._requirement import Requirement

_SPECIAL: Final = frozenset("=!(),><")
_IDENT, _NOT, _NE, _EQ, _EQEQ, _GT_T, _LT_T, _COMMA, _OPEN, _CLOSE, _IN_T, _NOTIN_T, _END = (
    range(13))
_PUNCT: Final[dict[str, int]] = {
    "!": _NOT, "!=": _NE, "=": _EQ, "==": _EQEQ, ">": _GT_T, "<": _LT_T,
    ",": _COMMA, "(": _OPEN, ")": _CLOSE,
}


def _lex(text: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in _SPECIAL:
            j = i + 1
            while j < n and text[j] in _SPECIAL and text[i:j + 1] in _PUNCT:
                j += 1
            lit = text[i:j]
            tok = _PUNCT.get(lit)
            if tok is None:
                raise _ParseError(f"error: unknown token '{lit}'")
            tokens.append((tok, lit))
            i = j
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
            j += 1
        tokens.append((_IDENT, text[i:j]))
        i = j
    tokens.append((_END, ""))
    return tokens


class _ParseError(Exception):
    pass


class _Parser:
    """Recursive descent over the token list, mirroring Kubernetes' parser so that the
    same inputs fail with the same messages."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, keywords: bool) -> tuple[int, str]:
        return self._resolve(self.tokens[self.pos], keywords)

    def take(self, keywords: bool) -> tuple[int, str]:
        tok = self._resolve(self.tokens[self.pos], keywords)
        if tok[0] != _END:
            self.pos += 1
        return tok

    @staticmethod
    def _resolve(tok: tuple[int, str], keywords: bool) -> tuple[int, str]:
        if keywords and tok[0] == _IDENT:
            if tok[1] == "in":
                return (_IN_T, tok[1])
            if tok[1] == "notin":
                return (_NOTIN_T, tok[1])
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek(False)
            if tok in (_IDENT, _NOT):
                try:
                    reqs.append(self.requirement())
                except _ParseError as exc:
                    raise _ParseError(f"unable to parse requirement: {exc}") from None
                tok, lit = self.take(False)
                if tok == _END:
                    return reqs
                if tok == _COMMA:
                    tok2, lit2 = self.peek(False)
                    if tok2 not in (_IDENT, _NOT):
                        raise _ParseError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise _ParseError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _END:
                return reqs
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        tok, lit = self.take(False)
        negated = tok == _NOT
        if negated:
            tok, lit = self.take(False)
        if tok != _IDENT:
            raise _ParseError(f"found '{lit}', expected: identifier")
        key = lit
        err = label_key_error(key)
        if err:
            raise _ParseError(f'Invalid value: "{key}": {err}')
        nxt, _ = self.peek(False)
        if nxt in (_END, _COMMA):
            return Requirement(key, "DoesNotExist" if negated else "Exists")
        if negated:
            return Requirement(key, "DoesNotExist")  # Kubernetes then fails on the next token
        tok, lit = self.take(True)
        if tok in (_IN_T, _NOTIN_T):
            values = self.value_set()
            return Requirement(key, "In" if tok == _IN_T else "NotIn", values)
        if tok in (_EQ, _EQEQ, _NE):
            value = self.exact_value()
            return Requirement(key, "NotIn" if tok == _NE else "In", (value,))
        if tok in (_GT_T, _LT_T):
            value = self.exact_value()
            return Requirement(key, "Gt" if tok == _GT_T else "Lt", (value,))
        raise _ParseError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")

    def exact_value(self) -> str:
        tok, lit = self.peek(False)
        if tok in (_END, _COMMA):
            return ""
        tok, lit = self.take(False)
        if tok == _IDENT:
            return lit
        raise _ParseError(f"found '{lit}', expected: identifier")

    def value_set(self) -> set[str]:
        tok, lit = self.take(False)
        if tok != _OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.peek(False)
        if tok == _CLOSE:
            self.take(False)
            return {""}
        if tok not in (_IDENT, _COMMA):
            raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            tok, lit = self.take(False)
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.peek(False)
                if tok2 == _COMMA:
                    self.take(False)
                    if self.peek(False)[0] == _CLOSE:
                        values.add("")
                        break
                    continue
                if tok2 == _CLOSE:
                    break
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                values.add("")
                tok2, _ = self.peek(False)
                if tok2 == _CLOSE:
                    break
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")
        self.take(False)  # the ')'
        return values
