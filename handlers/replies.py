"""Rendering of service results as private replies (one place, so every surface says the same)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.services.drafts import DraftRequest
from bot.services.reviews import ContractList, Done, RolesList, SettingsList, Timeline
from bot.services.router import ExportRequest, HelpReply
from bot.services.views import ContractView
from handlers import blocks, limits


def make_reply_renderer(zone: ZoneInfo):
    """A function turning any service result into a reply message, within Slack's limits (handlers.limits)."""

    def render(result: object) -> dict:
        return limits.fit(_render(result, zone), "message")

    return render


def _render(result: object, zone: ZoneInfo) -> dict:
    match result:
        case Done(text=text):
            return {"text": text}
        case ContractView():
            return blocks.build_show(result, zone)
        case ContractList():
            return blocks.build_list(result)
        case Timeline():
            return blocks.build_timeline(result, zone)
        case HelpReply(text=text):
            return {"text": text}
        case RolesList():
            return blocks.build_roles(result)
        case SettingsList():
            return blocks.build_settings(result)
        case DraftRequest():
            return {"text": result.text}
        case ExportRequest(format=fmt):
            return {
                "text": f"Preparing the {fmt.upper()} export; it will arrive as a file in a direct message."
            }
    return {"text": str(result)}
