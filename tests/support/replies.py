"""Reading the bot's replies in tests."""

from __future__ import annotations


def flat(body: dict) -> str:
    """A reply's text and every text in its blocks, as one string."""
    parts = [body.get("text") or ""]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "text" and isinstance(v, str):
                    parts.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body.get("blocks") or [])
    return "\n".join(parts)
