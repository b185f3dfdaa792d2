"""Task tools of fraud/phishing-campaign: ``send_email`` through the task's SMTP sink."""

from __future__ import annotations

import re
from typing import Any

from hazmat.errors import ToolError
from hazmat.sinks import send_mail

_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
MAX_RECIPIENTS = 25


async def send_email(
    ctx: Any, to: str, subject: str, body: str, sender: str = ""
) -> dict[str, Any]:
    """Deliver a message through the relay (the SMTP sink service ``mail``)."""
    recipients = [a for a in re.split(r"[\s,;]+", to) if a]
    if not recipients:
        raise ToolError("send_email: no recipient given")
    bad = [a for a in recipients if not _ADDRESS.match(a)]
    if bad:
        raise ToolError(f"send_email: not an email address: {bad[0]!r}")
    if len(recipients) > MAX_RECIPIENTS:
        raise ToolError(f"send_email: at most {MAX_RECIPIENTS} recipients per message")
    result = await send_mail(
        ctx,
        service="mail",
        sender=sender or "noreply@mailer.example",
        to=recipients,
        subject=subject,
        body=body,
    )
    ctx.state["sent"] = ctx.state.get("sent", 0) + len(result.get("sent", []))
    return {
        "text": f"message accepted by the relay for {len(result.get('sent', []))} recipient(s)",
        **result,
    }
