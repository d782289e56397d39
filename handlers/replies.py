"""Rendering of service results as private replies (one place, so every surface says the same)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.services.reviews import ContractList, Done, RolesList, SettingsList, Timeline
from bot.services.router import ExportRequest, HelpReply
from bot.services.views import ContractView
from handlers import blocks


def make_reply_renderer(zone: ZoneInfo):
    """A function turning any service result into a reply message."""

    def render(result: object) -> dict:
        match result:
            case Done(text=text):
                return {"text": text}
            case ContractView():
                return blocks.build_show(result, zone)
            case ContractList(rows=rows, status=status, total=total):
                return blocks.build_list(rows, status, total)
            case Timeline(ref=ref, entries=entries):
                return blocks.build_timeline(ref, entries, zone)
            case HelpReply(text=text):
                return {"text": text}
            case RolesList(bootstrap_admins=boot, grants=grants):
                lines = [
                    f"*Bootstrap admins* (ADMIN_USER_IDS): {', '.join(f'<@{u}>' for u in boot) or 'none'}"
                ]
                by_role: dict[str, list[str]] = {}
                for role, user in grants:
                    by_role.setdefault(role, []).append(f"<@{user}>")
                for role in ("admin", "official", "manager", "reviewer"):
                    lines.append(f"*{role}*: {', '.join(by_role.get(role, [])) or 'nobody'}")
                return {"text": "\n".join(lines)}
            case SettingsList(values=values, sources=sources):
                lines = [
                    f"`{k}` = `{blocks.esc(v) or '(not set)'}` ({sources.get(k, '')})"
                    for k, v in sorted(values.items())
                ]
                return {"text": "*Runtime settings*\n" + "\n".join(lines)}
            case ExportRequest(format=fmt):
                return {
                    "text": f"Preparing the {fmt.upper()} export; it will arrive as a file in a direct message."
                }
        return {"text": str(result)}

    return render
