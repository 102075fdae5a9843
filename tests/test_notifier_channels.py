"""The delivery channels against real servers: aiosmtpd for email, http.server for webhooks.

Nothing is mocked: the email is parsed back from the bytes the SMTP server received, the
webhook bodies and signatures from the requests the HTTP server saw.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email
import email.policy
import hashlib
import hmac
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifiers import (
    Attachment,
    Channel,
    DeliveryError,
    Message,
    build_channels,
    build_renderer,
)
from notifiers.console import ConsoleChannel
from notifiers.email import EmailChannel, message_id_for
from notifiers.file import FileChannel
from notifiers.webhook import WECOM_MARKDOWN_LIMIT, WebhookChannel, parse_address

SENT_AT = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)
SENDER = "开发区网格办 <grid@kfq.example.gov.cn>"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def make_message(**changes: Any) -> Message:
    base = Message(
        kind="supervision",
        channel="email",
        recipient_name="王建国",
        address="wangjg@yantou.example.cn",
        subject="【督办单】EP-20260401-0007 堰头村整改超期2天3小时（中网格督办）",
        text="王建国：\n\n堰头村未在 2026-03-31 14:30 前完成整改，已超期 2天3小时。\n"
        "查看工单：https://closeloop.example.gov.cn/tickets/EP-20260401-0007",
        html="<!DOCTYPE html><html><body><p>堰头村<strong>已超期 2天3小时</strong></p>"
        "<p>&lt;script&gt;</p></body></html>",
        markdown="### 【督办单】EP-20260401-0007\n\n- **期限**：2026-03-31 14:30（已超期2天3小时）",
        idempotency_key="supervision:EP-20260401-0007:fix:2:wangjg",
        ticket_ref="EP-20260401-0007",
    )
    return dataclasses.replace(base, **changes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


# ---------------------------------------------------------------- SMTP


@dataclasses.dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: bytes | None

    def parsed(self) -> EmailMessage:
        mail = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        return mail


class Inbox:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.rcpt_reply: str | None = None  # e.g. "550 5.1.1 no such user"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        auth = session.auth_data
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                auth.login if isinstance(auth, LoginPassword) else None,
            )
        )
        return "250 Message accepted for delivery"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"grid-bot"
        and auth_data.password == b"s3cret-pw"
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> Any:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., tuple[Inbox, int]]]:
    started: list[Controller] = []

    def start(**kwargs: Any) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return inbox, port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def no_smtp_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOSELOOP_SMTP_USER", raising=False)
    monkeypatch.delenv("CLOSELOOP_SMTP_PASSWORD", raising=False)


def plain_channel(port: int, **kw: Any) -> EmailChannel:
    return EmailChannel(
        host="127.0.0.1",
        port=port,
        security="none",
        sender=SENDER,
        timeout=2,
        clock=lambda: SENT_AT,
        **kw,
    )


@pytest.mark.usefixtures("no_smtp_login")
def test_email_multipart_with_chinese_headers_and_attachments(smtp_server: Any) -> None:
    inbox, port = smtp_server()
    report = b"PK\x03\x04 fake xlsx bytes \x00\xff"
    message = make_message(
        kind="weekly_report",
        attachments=(
            Attachment("周报-2026-W14.xlsx", XLSX, report),
            Attachment("weekly-2026-W14.html", "text/html", "<h1>周报</h1>".encode()),
        ),
    )
    plain_channel(port).send(message)

    [got] = inbox.received
    assert got.mail_from == "grid@kfq.example.gov.cn"
    assert got.rcpt_tos == ["wangjg@yantou.example.cn"]
    head = got.data.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # every header is 7-bit: Chinese is RFC 2047 encoded
    assert b"=?utf-8?" in head

    mail = got.parsed()
    assert mail["Subject"] == message.subject
    assert "EP-20260401-0007" in mail["Subject"]
    [to] = mail["To"].addresses
    assert (to.display_name, to.addr_spec) == ("王建国", "wangjg@yantou.example.cn")
    [sender] = mail["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("开发区网格办", "grid@kfq.example.gov.cn")
    assert mail["Message-ID"] == message_id_for(message.idempotency_key, "kfq.example.gov.cn")
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"].datetime == SENT_AT

    assert mail.get_content_type() == "multipart/mixed"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n").rstrip("\n") == message.text
    assert "<strong>已超期 2天3小时</strong>" in html.get_content()
    files = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(files) == {"周报-2026-W14.xlsx", "weekly-2026-W14.html"}
    assert files["周报-2026-W14.xlsx"].get_content_type() == XLSX
    assert files["周报-2026-W14.xlsx"].get_content() == report
    assert files["weekly-2026-W14.html"].get_content() == "<h1>周报</h1>"


@pytest.mark.usefixtures("no_smtp_login")
def test_email_without_attachments_is_alternative_and_ref_is_put_in_subject(
    smtp_server: Any,
) -> None:
    inbox, port = smtp_server()
    plain_channel(port).send(make_message(subject="【提醒】整改剩余3小时20分钟"))
    mail = inbox.received[0].parsed()
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Subject"] == "[EP-20260401-0007] 【提醒】整改剩余3小时20分钟"
    assert mail["X-Closeloop-Ticket"] == "EP-20260401-0007"


@pytest.mark.usefixtures("no_smtp_login")
def test_a_resend_carries_the_same_message_id(smtp_server: Any) -> None:
    inbox, port = smtp_server()
    channel = plain_channel(port)
    channel.send(make_message())
    channel.send(make_message())
    channel.send(make_message(idempotency_key="supervision:EP-20260401-0007:fix:3:wangjg"))
    ids = [r.parsed()["Message-ID"] for r in inbox.received]
    assert ids[0] == ids[1] != ids[2]


def test_login_from_environment_variables_without_tls(
    smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    monkeypatch.setenv("ZONE_SMTP_USER", "grid-bot")
    monkeypatch.setenv("ZONE_SMTP_PASSWORD", "s3cret-pw")
    channel = plain_channel(port, user_env="ZONE_SMTP_USER", password_env="ZONE_SMTP_PASSWORD")
    channel.send(make_message())
    assert inbox.received[0].login == b"grid-bot"

    monkeypatch.setenv("ZONE_SMTP_PASSWORD", "wrong")
    with pytest.raises(DeliveryError) as refused:
        channel.send(make_message())
    assert refused.value.permanent
    assert "535" in refused.value.detail
    assert len(inbox.received) == 1


def test_starttls_with_required_auth(
    smtp_server: Any, server_tls: Any, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp_server(
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    monkeypatch.setenv("CLOSELOOP_SMTP_USER", "grid-bot")
    monkeypatch.setenv("CLOSELOOP_SMTP_PASSWORD", "s3cret-pw")
    channel = EmailChannel(
        host="127.0.0.1", port=port, security="starttls", sender=SENDER, timeout=2,
        ca_file=str(tls_files[0]),
    )  # fmt: skip
    channel.send(make_message())
    assert inbox.received[0].login == b"grid-bot"
    assert inbox.received[0].parsed()["Subject"].startswith("【督办单】EP-20260401-0007")

    # The same server, spoken to in plain text: it insists on STARTTLS first.
    with pytest.raises(DeliveryError) as plain:
        plain_channel(port).send(make_message())
    assert plain.value.permanent


@pytest.mark.usefixtures("no_smtp_login")
def test_implicit_tls_and_an_untrusted_certificate(
    smtp_server: Any, server_tls: Any, tls_files: tuple[Path, Path]
) -> None:
    inbox, port = smtp_server(ssl_context=server_tls)
    trusting = EmailChannel(
        host="127.0.0.1", port=port, security="ssl", sender=SENDER, timeout=2,
        ca_file=str(tls_files[0]),
    )  # fmt: skip
    trusting.send(make_message())
    assert len(inbox.received) == 1

    distrustful = EmailChannel(host="127.0.0.1", port=port, security="ssl", sender=SENDER)
    with pytest.raises(DeliveryError) as untrusted:
        distrustful.send(make_message())
    assert untrusted.value.permanent
    assert "certificate" in untrusted.value.detail


@pytest.mark.usefixtures("no_smtp_login")
@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 No such user here", True), ("451 4.3.0 Mailbox busy, try later", False)],
)
def test_refused_recipient(smtp_server: Any, reply: str, permanent: bool) -> None:
    inbox, port = smtp_server()
    inbox.rcpt_reply = reply
    with pytest.raises(DeliveryError) as refused:
        plain_channel(port).send(make_message())
    assert refused.value.permanent is permanent
    assert reply.split()[0] in refused.value.detail
    assert inbox.received == []


@pytest.mark.usefixtures("no_smtp_login")
def test_smtp_timeout_and_refused_connection_are_retryable(
    silent_port: int, closed_port: int
) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as timed_out:
        EmailChannel(host="127.0.0.1", port=silent_port, security="none", sender=SENDER,
                     timeout=0.3).send(make_message())  # fmt: skip
    assert not timed_out.value.permanent
    assert time.monotonic() - started < 2
    with pytest.raises(DeliveryError) as refused:
        plain_channel(closed_port).send(make_message())
    assert not refused.value.permanent


def test_half_configured_login_and_bad_address_are_permanent(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("CLOSELOOP_SMTP_USER", "grid-bot")
    monkeypatch.delenv("CLOSELOOP_SMTP_PASSWORD", raising=False)
    with pytest.raises(DeliveryError, match="CLOSELOOP_SMTP_PASSWORD is not set") as half:
        plain_channel(closed_port).send(make_message())
    assert half.value.permanent
    monkeypatch.delenv("CLOSELOOP_SMTP_USER")
    for bad in ("not-an-address", "a@b\r\nBcc: everyone@example.cn", ""):
        with pytest.raises(DeliveryError, match="not an email address") as wrong:
            plain_channel(closed_port).send(make_message(address=bad))
        assert wrong.value.permanent


def test_email_channel_refuses_a_bad_configuration() -> None:
    with pytest.raises(ValueError, match="security"):
        EmailChannel(host="h", sender=SENDER, security="tls")
    with pytest.raises(ValueError, match="sender"):
        EmailChannel(host="h", sender="网格办")
    assert EmailChannel(host="h", sender=SENDER, security="ssl").effective_port == 465


# ---------------------------------------------------------------- HTTP


@dataclasses.dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)


class Hook:
    def __init__(self, base: str) -> None:
        self.base = base
        self.seen: list[Seen] = []
        self.status = 200
        self.reply = b'{"errcode": 0, "errmsg": "ok"}'

    def answer(self, status: int, reply: Any) -> None:
        self.status = status
        self.reply = reply if isinstance(reply, bytes) else json.dumps(reply).encode()


class HookHandler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        hook: Hook = self.server.hook
        body = self.rfile.read(int(self.headers["Content-Length"]))
        hook.seen.append(Seen(self.path, dict(self.headers.items()), body))
        self.send_response(hook.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(hook.reply)))
        self.end_headers()
        self.wfile.write(hook.reply)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HookHandler)
    server.hook = Hook(f"http://127.0.0.1:{server.server_address[1]}")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server.hook  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def webhook() -> Iterator[WebhookChannel]:
    channel = WebhookChannel(
        timeout=2, trust_env=False, clock=lambda: datetime.fromtimestamp(1775122200.123, UTC)
    )
    yield channel
    channel.close()


def hook_message(address: str, **changes: Any) -> Message:
    return make_message(channel="webhook", address=address, **changes)


def test_generic_json_post_with_idempotency_key_and_signature(
    hook: Hook, webhook: WebhookChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "zone-shared-secret")
    message = hook_message(
        f"{hook.base}/closeloop#secret_env=HOOK_SECRET",
        attachments=(Attachment("周报.xlsx", XLSX, b"0123456789"),),
    )
    webhook.send(message)
    [seen] = hook.seen
    assert seen.path == "/closeloop"  # the fragment is never sent
    assert seen.headers["Idempotency-Key"] == message.idempotency_key
    assert seen.headers["Content-Type"] == "application/json; charset=utf-8"
    body = seen.json()
    assert body == {
        "kind": "supervision",
        "ticket_ref": "EP-20260401-0007",
        "recipient_name": "王建国",
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "markdown": message.markdown,
        "idempotency_key": message.idempotency_key,
        "attachments": [{"filename": "周报.xlsx", "content_type": XLSX, "size": 10}],
    }
    timestamp = seen.headers["X-Closeloop-Timestamp"]
    assert timestamp == "1775122200"
    expected = hmac.new(
        b"zone-shared-secret", timestamp.encode() + b"." + seen.body, hashlib.sha256
    ).hexdigest()
    assert seen.headers["X-Closeloop-Signature"] == f"sha256={expected}"


def test_dingtalk_markdown_with_signature(
    hook: Hook, webhook: WebhookChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "SEC0a1b2c3d4e5f+/="  # its sign has '+', '/' and '=': urlencoding must keep them
    monkeypatch.setenv("DT_YANTOU", secret)
    address = f"dingtalk+{hook.base}/robot/send?access_token=tok123#secret_env=DT_YANTOU"
    webhook.send(hook_message(address))
    [seen] = hook.seen
    assert seen.path.startswith("/robot/send?access_token=tok123&timestamp=")
    query = seen.query()
    assert query["access_token"] == ["tok123"]
    timestamp = query["timestamp"][0]
    assert timestamp == "1775122200123"  # milliseconds
    string_to_sign = f"{timestamp}\n{secret}".encode()
    expected = base64.b64encode(
        hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]
    assert seen.json() == {
        "msgtype": "markdown",
        "markdown": {
            "title": "【督办单】EP-20260401-0007 堰头村整改超期2天3小时（中网格督办）",
            "text": make_message().markdown,
        },
    }
    assert seen.headers["Idempotency-Key"] == "supervision:EP-20260401-0007:fix:2:wangjg"


def test_dingtalk_without_secret_is_not_signed(hook: Hook, webhook: WebhookChannel) -> None:
    webhook.send(hook_message(f"dingtalk+{hook.base}/robot/send?access_token=tok123"))
    assert hook.seen[0].query() == {"access_token": ["tok123"]}


def test_wecom_markdown_and_its_length_limit(hook: Hook, webhook: WebhookChannel) -> None:
    address = f"wecom+{hook.base}/cgi-bin/webhook/send?key=k-1"
    webhook.send(hook_message(address))
    assert hook.seen[0].json() == {
        "msgtype": "markdown",
        "markdown": {"content": make_message().markdown},
    }
    assert hook.seen[0].headers["Idempotency-Key"] == make_message().idempotency_key

    long = "\n".join(f"- EP-2026040{i % 10}-{i:04d} 乱堆乱放 堰头村" for i in range(400))
    webhook.send(hook_message(address, markdown=long))
    content = hook.seen[1].json()["markdown"]["content"]
    assert len(content.encode("utf-8")) <= WECOM_MARKDOWN_LIMIT
    assert content.startswith("- EP-20260400-0000 乱堆乱放")
    assert content.endswith("…")


def test_feishu_post_with_signature(
    hook: Hook, webhook: WebhookChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FS_ZONE", "feishu-secret")
    hook.answer(200, {"code": 0, "msg": "success", "data": {}})
    webhook.send(hook_message(f"feishu+{hook.base}/open-apis/bot/v2/hook/abc#secret_env=FS_ZONE"))
    body = hook.seen[0].json()
    assert body["timestamp"] == "1775122200"  # seconds
    string_to_sign = f"{body['timestamp']}\nfeishu-secret".encode()
    expected = base64.b64encode(hmac.new(string_to_sign, b"", hashlib.sha256).digest()).decode()
    assert body["sign"] == expected
    assert body["msg_type"] == "post"
    post = body["content"]["post"]["zh_cn"]
    assert post["title"] == make_message().subject
    assert post["content"][0] == [{"tag": "text", "text": "王建国："}]
    assert post["content"][1] == [{"tag": "text", "text": ""}]
    url = "https://closeloop.example.gov.cn/tickets/EP-20260401-0007"
    assert post["content"][-1] == [
        {"tag": "text", "text": "查看工单："},
        {"tag": "a", "text": url, "href": url},
    ]


def test_default_format_and_default_secret_from_config(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOSELOOP_WEBHOOK_SECRET", "dt-secret")
    channels = build_channels(
        {"webhook": {"format": "dingtalk", "secret_env": "CLOSELOOP_WEBHOOK_SECRET",
                     "timeout": 2, "trust_env": False}}
    )  # fmt: skip
    channel = channels["webhook"]
    assert isinstance(channel, WebhookChannel)
    try:
        channel.send(hook_message(f"{hook.base}/robot/send?access_token=t"))
    finally:
        channel.close()
    query = hook.seen[0].query()
    assert hook.seen[0].json()["msgtype"] == "markdown"
    sign = base64.b64encode(
        hmac.new(
            b"dt-secret", f"{query['timestamp'][0]}\ndt-secret".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert query["sign"] == [sign]


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (502, False), (503, False), (429, False), (408, False),
     (400, True), (401, True), (403, True), (404, True), (410, True)],
)  # fmt: skip
def test_http_status_decides_retry(
    hook: Hook, webhook: WebhookChannel, status: int, permanent: bool
) -> None:
    hook.answer(status, b'{"error": "robot says no: \xe5\x85\xb3\xe9\x94\xae\xe8\xaf\x8d"}')
    with pytest.raises(DeliveryError) as failed:
        webhook.send(hook_message(f"{hook.base}/hook"))
    assert failed.value.permanent is permanent
    assert f"HTTP {status}" in failed.value.detail
    if permanent:
        assert "robot says no: 关键词" in failed.value.detail  # the body, for whoever reads it


@pytest.mark.parametrize(
    ("fmt", "reply", "permanent"),
    [
        ("dingtalk", {"errcode": 310000, "errmsg": "keywords not in content"}, True),
        ("dingtalk", {"errcode": 300001, "errmsg": "token is not exist"}, True),
        ("dingtalk", {"errcode": 130101, "errmsg": "send too fast"}, False),
        ("wecom", {"errcode": 93000, "errmsg": "invalid webhook url"}, True),
        ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}, False),
        ("feishu", {"code": 19021, "msg": "sign match fail", "data": {}}, True),
        ("feishu", {"code": 11232, "msg": "frequency limited", "data": {}}, False),
        ("feishu", {"StatusCode": 9499, "StatusMessage": "Bad Request"}, True),
    ],
)
def test_robot_error_codes_in_http_200(
    hook: Hook, webhook: WebhookChannel, fmt: str, reply: dict[str, Any], permanent: bool
) -> None:
    hook.answer(200, reply)
    with pytest.raises(DeliveryError) as failed:
        webhook.send(hook_message(f"{fmt}+{hook.base}/robot?access_token=secret-token-1"))
    assert failed.value.permanent is permanent
    code = reply.get("errcode", reply.get("code", reply.get("StatusCode")))
    assert f"code {code}" in failed.value.detail
    assert "secret-token-1" not in failed.value.detail  # the token stays out of error logs


def test_robot_answer_that_is_not_json_is_permanent(hook: Hook, webhook: WebhookChannel) -> None:
    hook.answer(200, b"<html>captive portal</html>")
    with pytest.raises(DeliveryError, match="no JSON") as failed:
        webhook.send(hook_message(f"wecom+{hook.base}/send?key=k"))
    assert failed.value.permanent
    webhook.send(hook_message(f"{hook.base}/generic"))  # a generic hook may answer anything


def test_a_server_that_never_answers_times_out_and_is_retryable(silent_port: int) -> None:
    channel = WebhookChannel(timeout=0.5, trust_env=False)
    started = time.monotonic()
    try:
        with pytest.raises(DeliveryError, match="timed out") as failed:
            channel.send(hook_message(f"dingtalk+http://127.0.0.1:{silent_port}/robot/send"))
    finally:
        channel.close()
    assert not failed.value.permanent
    assert time.monotonic() - started < 3


def test_refused_connection_is_retryable(closed_port: int, webhook: WebhookChannel) -> None:
    with pytest.raises(DeliveryError, match="unreachable") as failed:
        webhook.send(hook_message(f"http://127.0.0.1:{closed_port}/hook"))
    assert not failed.value.permanent


def test_unset_signing_secret_and_bad_address_are_permanent(
    webhook: WebhookChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    with pytest.raises(DeliveryError, match="NO_SUCH_SECRET is not set") as unset:
        webhook.send(hook_message("dingtalk+https://robot.invalid/send#secret_env=NO_SUCH_SECRET"))
    assert unset.value.permanent
    for bad in ("", "robot.example.cn/send", "ftp://robot.example.cn/", "json+https://x/#key=1"):
        with pytest.raises(DeliveryError) as wrong:
            webhook.send(hook_message(bad))
        assert wrong.value.permanent


def test_parse_address() -> None:
    target = parse_address("feishu+https://open.feishu.cn/open-apis/bot/v2/hook/x#secret_env=FS_1")
    assert (target.format, target.url, target.secret_env) == (
        "feishu",
        "https://open.feishu.cn/open-apis/bot/v2/hook/x",
        "FS_1",
    )
    plain = parse_address("https://hooks.example.cn/a+b?x=1", default_format="wecom")
    assert (plain.format, plain.url, plain.secret_env) == (
        "wecom",
        "https://hooks.example.cn/a+b?x=1",
        None,
    )
    with pytest.raises(ValueError, match="format"):
        parse_address("https://x.example.cn/", default_format="slack")


# ---------------------------------------------------------------- file and console


def test_file_channel_appends_one_json_line_per_message(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "notices.jsonl"
    channel = FileChannel(path, fsync=True, clock=lambda: SENT_AT)
    first = make_message(channel="file", address="")
    second = make_message(
        channel="file",
        address="",
        kind="weekly_report",
        ticket_ref=None,
        attachments=(Attachment("周报.xlsx", XLSX, b"xlsx"),),
    )
    channel.send(first)
    channel.send(second)
    raw = path.read_text(encoding="utf-8")
    lines = raw.splitlines()
    assert len(lines) == 2 and raw.endswith("\n")
    assert "堰头村" in lines[0]  # readable, not \u-escaped
    one, two = (json.loads(line) for line in lines)
    assert one["sent_at"] == "2026-04-02T09:30:00+00:00"
    assert one["idempotency_key"] == first.idempotency_key
    assert one["text"] == first.text  # newlines inside survive the one-line record
    assert one["subject"] == first.subject
    assert two["kind"] == "weekly_report" and two["ticket_ref"] is None
    assert two["attachments"] == [
        {
            "filename": "周报.xlsx",
            "content_type": XLSX,
            "size": 4,
            "sha256": hashlib.sha256(b"xlsx").hexdigest(),
        }
    ]


APPENDER = """
import sys
from pathlib import Path
from notifiers.file import FileChannel
from notifiers.message import Message
writer, count = sys.argv[1], int(sys.argv[2])
channel = FileChannel(Path(sys.argv[3]))
body = writer * 1500  # long lines: a torn or interleaved write would show
print("ready", flush=True)
sys.stdin.readline()  # the parent's "go": all writers start together
for i in range(count):
    channel.send(Message(kind="digest", channel="file", recipient_name=writer, address="",
                         subject=f"{writer}-{i}", text=body, html="", markdown="",
                         idempotency_key=f"{writer}:{i}"))
"""


def test_file_appends_from_several_processes_do_not_interleave(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    writers, count = "ABCD", 1500
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, w, str(count), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in writers
    ]
    for p in procs:  # a barrier: every writer has imported and waits
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    assert [p.wait(timeout=30) for p in procs] == [0] * len(writers)
    for p in procs:
        assert p.stdout is not None
        p.stdout.close()
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(writers) * count
    for w in writers:
        mine = [r for r in records if r["recipient_name"] == w]
        assert [r["subject"] for r in mine] == [f"{w}-{i}" for i in range(count)]
        assert all(r["text"] == w * 1500 for r in mine)


def test_file_channel_error_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(DeliveryError) as failed:
        FileChannel(blocker / "notices.jsonl").send(make_message(channel="file"))
    assert not failed.value.permanent


def test_console_writes_to_the_given_stream() -> None:
    stream = io.StringIO()
    ConsoleChannel(stream=stream).send(make_message(channel="console", address=""))
    out = stream.getvalue()
    assert out.startswith("── supervision → 王建国 · supervision:EP-20260401-0007:fix:2:wangjg\n")
    assert make_message().subject in out
    assert "已超期 2天3小时" in out

    stream = io.StringIO()
    ConsoleChannel(stream=stream, style="json", clock=lambda: SENT_AT).send(
        make_message(channel="console", attachments=(Attachment("a.html", "text/html", b"<p>"),))
    )
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["subject"] == make_message().subject
    assert record["attachments"][0]["filename"] == "a.html"


def test_console_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleChannel().send(make_message(channel="console"))
    assert "EP-20260401-0007" in capsys.readouterr().out


# ---------------------------------------------------------------- interface and config


def test_every_channel_satisfies_the_protocol(tmp_path: Path) -> None:
    config = {
        "timezone": "Asia/Shanghai",
        "console": {"style": "json"},
        "file": {"path": "var/notices.jsonl", "fsync": True},
        "email": {
            "host": "smtp.kfq.example.gov.cn",
            "port": 465,
            "security": "ssl",
            "sender": SENDER,
            "user_env": "ZONE_SMTP_USER",
            "password_env": "ZONE_SMTP_PASSWORD",
            "timeout": 7.5,
            "ca_file": "certs/ca.pem",
        },
        "webhook": {"format": "wecom", "timeout": 3},
    }
    channels = build_channels(config, base_dir=tmp_path)
    assert set(channels) == {"console", "file", "email", "webhook"}
    for name, channel in channels.items():
        assert isinstance(channel, Channel)
        assert channel.name == name
    file_channel, mail, hook = channels["file"], channels["email"], channels["webhook"]
    assert isinstance(file_channel, FileChannel)
    assert file_channel.path == tmp_path / "var" / "notices.jsonl" and file_channel.fsync
    assert isinstance(mail, EmailChannel)
    assert (mail.effective_port, mail.security, mail.timeout) == (465, "ssl", 7.5)
    assert (mail.user_env, mail.password_env) == ("ZONE_SMTP_USER", "ZONE_SMTP_PASSWORD")
    assert mail.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert isinstance(hook, WebhookChannel)
    assert (hook.format, hook.timeout, hook.secret_env) == ("wecom", 3, None)

    only_console = build_channels({})
    assert list(only_console) == ["console"]


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"emial": {}}, "unknown key"),
        ({"email": {"host": "h"}}, "needs sender"),
        ({"email": {"host": "h", "sender": SENDER, "hots": "x"}}, "unknown key"),
        ({"email": {"host": "h", "sender": SENDER, "port": "25"}}, "wrong type"),
        ({"email": {"host": "h", "sender": SENDER, "security": "tls"}}, "security"),
        ({"webhook": {"format": "slack"}}, "format"),
        ({"webhook": {"timeout": True}}, "wrong type"),
        ({"file": {}}, "needs path"),
        ({"console": {"style": "fancy"}}, "style"),
        ({"console": "yes"}, "must be a table"),
    ],
)
def test_bad_configuration_is_a_clear_error(config: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        build_channels(config)


def test_build_renderer_uses_timezone_and_override_folder(tmp_path: Path) -> None:
    (tmp_path / "zone" / "en").mkdir(parents=True)
    renderer = build_renderer({"timezone": "UTC", "templates": "zone"}, base_dir=tmp_path)
    assert renderer.override_dir == tmp_path / "zone"
    assert renderer.local(SENT_AT) == "2026-04-02 09:30"
    with pytest.raises(ValueError, match="does not exist"):
        build_renderer({"templates": "missing"}, base_dir=tmp_path)


def test_message_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown message kind"):
        make_message(kind="fanfare")
    with pytest.raises(ValueError, match="unknown channel"):
        make_message(channel="pager")
    with pytest.raises(ValueError, match="one line"):
        make_message(subject="督办\nBcc: x@example.cn")
    with pytest.raises(ValueError, match="idempotency_key"):
        make_message(idempotency_key=" ")
    with pytest.raises(ValueError, match="content_type"):
        Attachment("周报.xlsx", "xlsx", b"")
    with pytest.raises(ValueError, match="filename"):
        Attachment("../etc/passwd", "text/plain", b"")


def test_delivery_error_carries_its_kind() -> None:
    error = DeliveryError("HTTP 503", permanent=False)
    assert (error.detail, error.permanent, str(error)) == ("HTTP 503", False, "HTTP 503")
    with contextlib.suppress(DeliveryError):
        raise error
