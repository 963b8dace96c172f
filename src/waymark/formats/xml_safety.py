"""Safe XML parsing into a light tree that remembers source line numbers.

Why: GPX/KML come from untrusted uploads. defusedxml's parser refuses DTDs,
entity declarations (billion laughs) and external entities (XXE); we feed it a
tiny tree builder so each element knows its line (for error messages such as
"line 12: latitude 'undefined' is not a number") and tags are reduced to their
local name (KML 2.2 / earth.google.com 2.0-2.1 / no namespace all look alike;
the namespace is still available as ``Node.ns``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast
from xml.etree.ElementTree import ParseError  # nosec B405 - the exception class only, no parsing

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from waymark.formats.model import FormatError

ENTITY_ERROR = "XML entities/DTDs are not allowed"


_NO_ATTRIBUTES: dict[str, Any] = {}
_NO_CHILDREN: tuple[Any, ...] = ()


class Node:
    """One element. Memory matters (a 100,000-placemark KML is a million nodes): elements
    without attributes share one empty dict, children and text are only allocated when
    there are some."""

    __slots__ = ("_text", "attrib", "children", "line", "ns", "tag")

    def __init__(self, tag: str, ns: str, attrib: dict[str, Any], line: int) -> None:
        self.tag = tag
        self.ns = ns
        self.attrib = attrib or _NO_ATTRIBUTES
        self._text: list[str] | str | None = None
        self.children: list[Node] | tuple[Any, ...] = _NO_CHILDREN
        self.line = line

    @property
    def text(self) -> str:
        """Direct text content (CDATA included), not stripped."""
        t = self._text
        if t is None:
            return ""
        if isinstance(t, list):
            t = self._text = "".join(t)
        return t

    def find(self, tag: str) -> Node | None:
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def findall(self, tag: str) -> list[Node]:
        return [c for c in self.children if c.tag == tag]

    def findtext(self, tag: str) -> str | None:
        """Stripped text of the first child ``tag``; None if absent or empty."""
        c = self.find(tag)
        if c is None:
            return None
        t = c.text.strip()
        return t or None

    def get(self, name: str, default: Any = None) -> Any:
        """Attribute by local name (namespace ignored)."""
        v = self.attrib.get(name)
        if v is not None:
            return v
        for k, v in self.attrib.items():
            if k.endswith("}" + name):
                return v
        return default

    def iter(self, tag: str | None = None) -> Iterator[Node]:
        stack = [self]
        while stack:
            n = stack.pop()
            if tag is None or n.tag == tag:
                yield n
            stack.extend(reversed(n.children))

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Node {self.tag} line {self.line}>"


class _Builder:
    def __init__(self) -> None:
        self.expat: Any = None  # the expat parser, for line numbers
        self.stack: list[Node] = []
        self.root: Node | None = None
        self.names: dict[str, tuple[str, str]] = {}  # "{ns}tag" -> (local name, ns)

    def _name(self, tag: str) -> tuple[str, str]:
        if tag[0] == "{":
            ns, _, local = tag[1:].partition("}")
        else:
            ns, local = "", tag
        # undeclared prefix, e.g. "gx:Track" without xmlns
        name = self.names[tag] = (local.rpartition(":")[2], ns)
        return name

    def start(self, tag: str, attrib: dict[str, Any]) -> None:
        local, ns = self.names.get(tag) or self._name(tag)
        node = Node(local, ns, attrib, self.expat.CurrentLineNumber)
        if self.stack:
            parent = self.stack[-1]
            if isinstance(parent.children, tuple):  # the shared _NO_CHILDREN
                parent.children = [node]
            else:
                parent.children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, tag: str) -> None:
        node = self.stack.pop()
        if isinstance(node._text, list):  # one string per element, not a list of pieces
            node._text = "".join(node._text)

    def data(self, text: str) -> None:
        if self.stack:
            node = self.stack[-1]
            t = node._text
            if t is None:
                node._text = [text]
            elif isinstance(t, list):
                t.append(text)

    def close(self) -> Node | None:
        return self.root


def parse_xml(data: bytes) -> Node:
    """Parse untrusted XML bytes; raise FormatError (with line) on any problem."""
    if not data or data.isspace():
        raise FormatError("file is empty")
    builder = _Builder()
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    builder.expat = parser.parser
    try:
        parser.feed(data)
        root = cast("Node | None", parser.close())  # what _Builder.close returned
    except DefusedXmlException:
        raise FormatError(ENTITY_ERROR) from None
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else None
        msg = str(exc).split(":", 1)[0]
        raise FormatError(f"malformed XML ({msg})", line=line) from None
    except (ValueError, LookupError) as exc:  # e.g. unknown encoding declaration
        raise FormatError(f"malformed XML ({exc})") from None
    if root is None:
        raise FormatError("malformed XML (no root element)")
    return root
