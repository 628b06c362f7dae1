"""Plans → words: Slack Block Kit messages and emails (subject, plain text, HTML).

Pure functions of a ``Plan``. A first message carries everything an on-call
engineer needs without opening a dashboard: service, environment, versions,
rule, observed vs threshold vs baseline, the command id and what happens next.
Thread replies (repeats, updates, resolutions) are short. Subjects say what
happened in one line, e.g. ``[ROLLBACK] checkout production 2.4.1 → 2.4.0:
error rate 8.3% > 5%``.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from typing import Any

from guardian.notify.grouping import Plan
from guardian.notify.notice import Notice

_PERCENT_HINTS = ("error_rate", "availability", "utilization", "ratio", "percent")
_TAGS = {"rollback": "ROLLBACK", "pause": "PAUSE", "notify": "ALERT", "escalate": "ESCALATION"}
_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A ``chat.postMessage`` payload: fallback text plus blocks."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """One email: subject, text and HTML bodies, and threading headers."""

    subject: str
    text: str
    html: str
    message_id: str
    in_reply_to: str | None


def metric_label(metric: str) -> str:
    """``latency_p95_ms`` → ``latency p95``."""
    return metric.removesuffix("_ms").replace("_", " ")


def format_value(metric: str, value: object) -> str:
    """A value as an operator reads it: ``8.3%``, ``412ms`` or as given."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    if any(hint in metric for hint in _PERCENT_HINTS):
        return f"{value * 100:.3g}%"
    if metric.endswith("_ms"):
        return f"{value:.4g}ms"
    return f"{value:.4g}"


def versions(notice: Notice) -> str:
    """``2.4.1 → 2.4.0`` for a rollback, else the deployed version (or empty)."""
    if notice.version and notice.previous_version and notice.action in ("rollback", "escalate"):
        return f"{notice.version} → {notice.previous_version}"
    return notice.version or ""


def comparison(notice: Notice) -> str:
    """``error rate 8.3% > 5%`` from the evidence, or the decision's reason."""
    ev = notice.evidence
    metric, observed, threshold = ev.get("metric"), ev.get("observed"), ev.get("threshold")
    if not (
        isinstance(metric, str)
        and isinstance(observed, int | float)
        and isinstance(threshold, int | float)
    ):
        return notice.reason
    op = ">" if observed > threshold else "<" if observed < threshold else "="
    shown = f"{format_value(metric, observed)} {op} {format_value(metric, threshold)}"
    return f"{metric_label(metric)} {shown}"


def _who(notice: Notice) -> str:
    return " ".join(p for p in (notice.service, notice.environment, versions(notice)) if p)


def subject(plan: Plan) -> str:
    """One line that says what happened."""
    notice = plan.notice
    if plan.kind == "storm":
        shown = ", ".join(plan.storm_services[:5])
        more = f" (+{len(plan.storm_services) - 5})" if len(plan.storm_services) > 5 else ""
        return f"[STORM] {len(plan.storm_services)} services firing at once: {shown}{more}"
    if plan.kind == "resolve":
        if notice.confirmation:
            target = notice.previous_version or "the previous version"
            what = f"rolled back to {target}" if notice.confirmation == "rolled_back" else "failed"
            return f"[RESOLVED] {notice.service} {notice.environment}: deploy {what}"
        return f"[RESOLVED] {_who(notice)}: {notice.rule} ({comparison(notice)})"
    if notice.action == "escalate":
        return f"[ESCALATION] no rollback confirmation for {_who(notice)}"
    tag = _TAGS.get(notice.action, notice.action.upper())
    if notice.dry_run:
        tag += " DRY RUN"
    prefix = "[REPEAT] " if plan.kind == "repeat" else ""
    return f"{prefix}[{tag}] {_who(notice)}: {comparison(notice)}"


def next_steps(notice: Notice) -> str:
    """What happens next, in one or two sentences."""
    if notice.state == "resolved" or notice.kind == "confirmation":
        return "Nothing more to do; the incident is closed."
    if notice.action == "escalate":
        cid = notice.command_id or "the rollback command"
        return (
            f"No executor confirmed {cid}. Check the deploy executor and roll back by hand "
            "if the previous version is not serving."
        )
    if notice.dry_run:
        return "Dry run: no command was sent; the rule would have acted."
    if notice.action == "rollback" and notice.command:
        traffic = notice.command.get("traffic") or {}
        return (
            f"Command {notice.command_id} sent to the executors: "
            f"{notice.command.get('procedure', 'rollback')}, traffic {traffic.get('action', '?')}. "
            "The guardian escalates if no rolled_back confirmation arrives in time."
        )
    if notice.action == "pause":
        return "The rollout is paused; resume it or roll back by hand."
    return "No automatic action; watch the deploy."


def _facts(notice: Notice) -> list[tuple[str, str]]:
    ev = notice.evidence
    metric = str(ev.get("metric") or "")
    facts = [
        ("Service", notice.service),
        ("Environment", notice.environment),
        ("Versions", versions(notice) or "n/a"),
        ("Rule", f"{notice.rule} ({notice.severity})"),
    ]
    if metric:
        facts += [
            ("Observed", format_value(metric, ev.get("observed"))),
            ("Threshold", format_value(metric, ev.get("threshold"))),
            ("Baseline", format_value(metric, ev.get("baseline"))),
        ]
    if notice.regions:
        facts.append(("Regions", ", ".join(notice.regions)))
    if notice.command_id:
        facts.append(("Command", notice.command_id))
    return facts


def _storm_text(plan: Plan) -> str:
    return (
        f"{len(plan.storm_services)} services opened incidents within a short window: "
        f"{', '.join(plan.storm_services)}. Further incidents of this storm are listed "
        "in this thread instead of separate messages."
    )


def slack_message(plan: Plan) -> SlackMessage:
    """Block Kit for a plan: a full card for a new incident, a short reply otherwise."""
    notice, title = plan.notice, subject(plan)
    context = {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": f"`{notice.notification_id}` · {notice.incident_key}"}
        ],
    }
    if plan.kind == "storm":
        body = {"type": "section", "text": {"type": "mrkdwn", "text": _storm_text(plan)}}
        return SlackMessage(title, [_header(title), body])
    if plan.kind in ("resolve", "repeat", "storm_item"):
        lines = [f"*{title}*", notice.reason or comparison(notice)]
        if plan.kind == "repeat" and plan.suppressed:
            lines.append(f"{plan.suppressed} similar event(s) since the last message.")
        lines.append(next_steps(notice))
        text = "\n".join(line for line in lines if line)
        return SlackMessage(
            title, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}, context]
        )
    fields = [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in _facts(notice)]
    blocks: list[dict[str, Any]] = [
        _header(f"{title}"),
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{_EMOJI.get(notice.severity, '')} {notice.reason}".strip(),
            },
        },
        {"type": "section", "fields": fields[:10]},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*What happens next*\n{next_steps(notice)}"},
        },
        context,
    ]
    return SlackMessage(title, blocks)


def _header(text: str) -> dict[str, Any]:
    # Slack rejects header text longer than 150 characters.
    short = text if len(text) <= 150 else text[:149] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": short, "emoji": True}}


def email_message(plan: Plan, domain: str = "guardian") -> EmailMessage | None:
    """The email for a plan, or None when email stays quiet (incidents inside a storm)."""
    if plan.kind == "storm_item":
        return None
    notice, title = plan.notice, subject(plan)
    anchor = (
        f"<{_mail_id(plan.incident if plan.kind != 'storm' else notice.notification_id)}@{domain}>"
    )
    first = plan.kind in ("open", "storm")
    message_id = anchor if first else f"<{notice.notification_id}.{plan.kind}@{domain}>"
    if plan.kind == "storm":
        facts: list[tuple[str, str]] = [("Services", ", ".join(plan.storm_services))]
        lead = _storm_text(plan).replace("in this thread", "in Slack")
    else:
        facts = _facts(notice)
        lead = notice.reason
    steps = next_steps(notice)
    text = "\n".join(
        [
            title,
            "",
            lead,
            "",
            *(f"{k}: {v}" for k, v in facts),
            "",
            f"What happens next: {steps}",
            "",
            f"Notification {notice.notification_id}",
        ]
    )
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in facts
    )
    body = (
        f"<html><body><h2>{html.escape(title)}</h2><p>{html.escape(lead)}</p>"
        f"<table>{rows}</table><h3>What happens next</h3><p>{html.escape(steps)}</p>"
        f"<p><small>Notification {html.escape(notice.notification_id)}</small></p></body></html>"
    )
    return EmailMessage(title, text, body, message_id, None if first else anchor)


def _mail_id(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]
