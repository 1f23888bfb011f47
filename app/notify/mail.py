"""E-mail: plain text, through SMTP when SMTP_URL is set, else to the console sink.

SMTP_URL is ``smtp://[user:password@]host[:port]`` (STARTTLS whenever the server offers
it; a password is never sent over a connection without TLS) or
``smtps://[user:password@]host[:port]`` (TLS from the first byte). User and password are
percent-decoded. Without SMTP_URL, each message is written to the ``flagdesk.mail``
logger instead (at WARNING, so it shows with no logging set up, and so that a production
without SMTP says so).

Payloads may carry untrusted report text: messages are plain text only (no HTML part),
and control characters are removed. Neither the password nor the URL that holds it is
ever logged or put into an error message.
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger("flagdesk.mail")

SUBJECT_MAX = 200
ADDRESS_MAX = 254
# Control characters other than tab and newline: they could rewrite a terminal or a log.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ADDRESS = re.compile(r"^[^@\s<>,;\"()\[\]\\]+@[^@\s<>,;\"()\[\]\\]+\.[^@\s<>,;\"()\[\]\\]+$")


class MailError(Exception):
    """Sending failed; trying again later may work."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: bool  # smtps://: TLS from the first byte
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpSettings:
    """SmtpSettings from an smtp:// or smtps:// URL; ValueError (naming no password) if
    it is not one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:password@host:587 or "
                         "smtps://user:password@host:465")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError("SMTP_URL has an invalid port") from error
    tls = parts.scheme == "smtps"
    return SmtpSettings(
        host=parts.hostname, port=port or (465 if tls else 25), tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None)


def is_address(value: str) -> bool:
    """A plausible single e-mail address (no display name, no header tricks)."""
    return len(value) <= ADDRESS_MAX and bool(_ADDRESS.match(value))


def clean_text(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_line(text: str, limit: int = SUBJECT_MAX) -> str:
    line = " ".join(clean_text(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def render(event: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(subject, plain-text body) for a notice.

    The payload's "subject" (or "title") is the subject line, its "text" the opening
    paragraph, and every other field follows as "name: value", "url" last.
    """
    subject = clean_line(str(payload.get("subject") or payload.get("title")
                             or f"Flagdesk: {event}"))
    lines = []
    if payload.get("text"):
        lines += [clean_text(_value(payload["text"])).strip(), ""]
    skip = {"subject", "title", "text", "url"}
    for name, value in payload.items():
        if name not in skip and value is not None:
            lines.append(f"{clean_line(str(name), 60)}: {clean_text(_value(value))}")
    if payload.get("url"):
        lines += ["", clean_line(_value(payload["url"]), 2000)]
    lines += ["", f"-- Flagdesk ({clean_line(event, 64)})"]
    return subject, "\n".join(lines).strip() + "\n"


def build_message(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = clean_line(subject)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(clean_text(body))
    return message


def send(*, smtp_url: str | None, sender: str, to: str, subject: str, body: str,
         timeout: float) -> None:
    """Send one plain-text message to `to`, or log it when there is no SMTP_URL.
    Raises MailError when it could not be sent (the caller retries later)."""
    message = build_message(sender=sender, to=to, subject=subject, body=body)
    if not smtp_url:
        log.warning("SMTP_URL is not set: this e-mail is written here instead of sent.\n"
                    "To: %s\nSubject: %s\n\n%s", message["To"], message["Subject"],
                    message.get_content())
        return
    try:
        settings = parse_smtp_url(smtp_url)
    except ValueError as error:
        raise MailError(str(error)) from None
    try:
        _smtp_send(settings, message, timeout)
    except MailError:
        raise
    except smtplib.SMTPException as error:
        raise MailError(f"{type(error).__name__}: {_smtp_reason(error)}") from None
    except (OSError, ssl.SSLError) as error:
        raise MailError(f"{type(error).__name__}: {error}") from None


def _smtp_reason(error: smtplib.SMTPException) -> str:
    # The server's own words (code and text), never the credentials we sent.
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(
            error.smtp_error, bytes) else str(error.smtp_error)
        return f"{error.smtp_code} {clean_line(text)}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "recipient refused"
    return clean_line(str(error))


def _smtp_send(settings: SmtpSettings, message: EmailMessage, timeout: float) -> None:
    context = ssl.create_default_context()
    if settings.tls:
        connection: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port,
                                                    timeout=timeout, context=context)
    else:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
    with connection:
        connection.ehlo()
        if not settings.tls and connection.has_extn("starttls"):
            connection.starttls(context=context)
            connection.ehlo()
            secure = True
        else:
            secure = settings.tls
        if settings.username:
            if not secure:
                raise MailError("the SMTP server does not offer STARTTLS: not sending the "
                                "password over an unencrypted connection")
            connection.login(settings.username, settings.password or "")
        connection.send_message(message)
