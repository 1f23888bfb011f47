"""Real receivers on loopback: an HTTP server for webhooks and a small SMTP server.

Both run in a thread on port 0 and record what they got; the tests script their answers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core.clock import frozen

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 204
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """A webhook receiver: records each POST and answers with the next scripted reply
    (204 once the script runs out)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: list[Reply] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                reply = receiver.replies.pop(0) if receiver.replies else Reply()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/flagdesk"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)


def independent_check(secret: str, request: Received, *, now: datetime,
                      tolerance: int = 300) -> bool:
    """The receiver's own check, written from the documentation, not with our verify()."""
    header = request.headers["Flagdesk-Signature"]
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body,
                        hashlib.sha256).hexdigest()
    fresh = abs(now.timestamp() - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, fields["v1"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    receiver.thread.join()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# --- SMTP ----------------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


def _address(command: str) -> str:
    match = re.search(r"<([^>]*)>", command)
    return match.group(1) if match else ""


class SmtpServer:
    """Just enough SMTP (RFC 5321) to accept messages: EHLO, MAIL, RCPT, DATA, QUIT.
    It offers no STARTTLS and no AUTH. `refuse_mail` makes MAIL FROM answer 451."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.commands: list[str] = []
        self.refuse_mail = False
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def send(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.send("220 localhost test SMTP")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    command = line.decode().rstrip("\r\n")
                    server.commands.append(command)
                    verb = command[:4].upper()
                    if verb in {"EHLO", "HELO"}:
                        self.send("250-localhost\r\n250-8BITMIME\r\n250 SIZE 1000000")
                    elif verb == "MAIL":
                        if server.refuse_mail:
                            self.send("451 4.3.0 try again later")
                            continue
                        sender, recipients = _address(command), []
                        self.send("250 OK")
                    elif verb == "RCPT":
                        recipients.append(_address(command))
                        self.send("250 OK")
                    elif verb == "DATA":
                        self.send("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while (raw := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(raw[1:] if raw.startswith(b"..") else raw)
                        server.mails.append(Mail(sender, recipients, b"".join(lines)))
                        self.send("250 queued")
                    elif verb == "QUIT":
                        self.send("221 bye")
                        return
                    elif verb in {"RSET", "NOOP"}:
                        self.send("250 OK")
                    else:
                        self.send("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join()


@pytest.fixture
def clock() -> Iterator:
    """now() frozen at T0; call the fixture's value with an instant to move it."""
    with frozen(T0) as move_to:
        yield move_to
