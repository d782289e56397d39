"""Validation of the filing form (modal) with the same rules as `/contract file`, field by field."""

from __future__ import annotations

from datetime import date

from bot.domain import args
from bot.domain.errors import InputError


def validate_file_form(
    raw: dict[str, str | None], *, today: date
) -> tuple[dict[str, object], dict[str, str]]:
    """Typed values and per-field errors (block id -> message) for the filing modal's inputs."""
    command = args.COMMANDS["file"]
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    for opt in command.options:
        text = (raw.get(opt.key) or "").strip()
        if not text:
            if opt.required:
                errors[opt.key] = f"{opt.key.replace('_', ' ').capitalize()} is required."
            continue
        try:
            values[opt.arg_name] = args._convert(
                opt.kind, text, opt.key, today=today, max_len=opt.max_len, choices=opt.choices
            )
        except InputError as exc:
            errors[opt.key] = exc.message[:150]
    return values, errors
