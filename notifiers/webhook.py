"""Webhook channel: a generic JSON POST, or the group robots of DingTalk, WeCom and Feishu.

Address
    ``[FORMAT+]URL[#secret_env=NAME]``, for example::

        https://hooks.example.gov.cn/closeloop                     (the configured default format)
        dingtalk+https://oapi.dingtalk.com/robot/send?access_token=...#secret_env=DT_YANTOU
        wecom+https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
        feishu+https://open.feishu.cn/open-apis/bot/v2/hook/...#secret_env=FS_ZONE

    So one person's robot can differ from another's. The fragment is never sent; it names the
    environment variable that holds the robot's signing secret (secrets stay out of the
    database). Without it, the channel's ``secret_env`` applies; with neither, nothing is signed.
    A named variable that is not set is a permanent error: an unsigned post would be refused.

Bodies
    json      ``{"kind", "ticket_ref", "recipient_name", "subject", "text", "html", "markdown",
              "idempotency_key", "attachments": [{"filename", "content_type", "size"}]}``;
              attachments are described, not sent. With a secret: headers
              ``X-Closeloop-Timestamp`` (seconds) and ``X-Closeloop-Signature:
              sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``.
    dingtalk  ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; with a secret, query
              parameters ``timestamp`` (ms) and ``sign`` = urlencoded base64(HMAC-SHA256(secret,
              f"{timestamp}\\n{secret}")).
    wecom     ``{"msgtype": "markdown", "markdown": {"content"}}``, cut to WeCom's 4096 bytes.
              WeCom robots have no signature; a secret is ignored.
    feishu    ``{"msg_type": "post", "content": {"post": {"zh_cn": {"title", "content"}}}}``,
              one paragraph per line of the plain text, links as ``a`` tags; with a secret,
              ``timestamp`` (s) and ``sign`` = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}",
              msg=b"")) in the body.
    Every request carries the ``Idempotency-Key`` header.

Failures
    Time-outs, connection errors, HTTP 408, 425, 429 and 5xx: retry. Any other non-2xx:
    permanent, with the start of the response body. The robots answer HTTP 200 with an error
    code in the body: a code in ``RETRYABLE_CODES`` (rate limits and "system busy") is
    retried, any other non-zero code (bad token, bad signature, keyword or IP check failed,
    malformed message) is permanent, because sending the same thing again gives the same
    answer. A robot answer that is not JSON is permanent too: the URL is not that robot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx

from notifiers.message import Clock, DeliveryError, Message, utc_now

FORMATS = ("json", "dingtalk", "wecom", "feishu")

# Codes in an HTTP 200 answer that say "later", not "never".
RETRYABLE_CODES: dict[str, frozenset[int]] = {
    # -1 system busy; 130101 more than 20 messages a minute; 90030 webhook call quota used up.
    "dingtalk": frozenset({-1, 130101, 90030}),
    # -1 system busy; 45009 API frequency limit; 45033 concurrency limit.
    "wecom": frozenset({-1, 45009, 45033}),
    # 11232 robot rate limit (100/min, 5/s); 99991400 platform frequency limit.
    "feishu": frozenset({11232, 99991400}),
}
RETRYABLE_STATUS = frozenset({408, 425, 429})
WECOM_MARKDOWN_LIMIT = 4096  # bytes of UTF-8
_BODY_IN_ERROR = 500  # characters of a response body kept in an error
_URL = re.compile(r"https?://[^\s<>\"'）)]+")


@dataclass(frozen=True)
class Target:
    format: str
    url: str
    secret_env: str | None


def parse_address(address: str, default_format: str = "json") -> Target:
    """Split ``[FORMAT+]URL[#secret_env=NAME]``; ValueError when it is not one."""
    raw = address.strip()
    fmt = default_format
    head, plus, rest = raw.partition("+")
    if plus and head in FORMATS:
        fmt, raw = head, rest
    raw, _, fragment = raw.partition("#")
    secret_env = None
    if fragment:
        key, eq, value = fragment.partition("=")
        if key != "secret_env" or not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"webhook address fragment {fragment!r} is not secret_env=NAME")
        secret_env = value
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"webhook address {address!r} is not [format+]http(s)://... ")
    if fmt not in FORMATS:
        raise ValueError(f"webhook format {fmt!r} is not one of {', '.join(FORMATS)}")
    return Target(fmt, raw, secret_env)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The DingTalk ``sign`` query value, already urlencoded."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    # Feishu keys the HMAC with the string to sign and hashes an empty message.
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def json_signature(secret: str, timestamp_s: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def truncate_utf8(text: str, limit: int, marker: str = "\n…") -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len(marker.encode("utf-8"))
    cut = text.encode("utf-8")[:room].decode("utf-8", "ignore")
    return cut + marker


def _feishu_line(line: str) -> list[dict[str, str]]:
    items: list[dict[str, str]] = []
    pos = 0
    for match in _URL.finditer(line):
        if match.start() > pos:
            items.append({"tag": "text", "text": line[pos : match.start()]})
        items.append({"tag": "a", "text": match.group(), "href": match.group()})
        pos = match.end()
    if pos < len(line) or not items:
        items.append({"tag": "text", "text": line[pos:]})
    return items


@dataclass
class WebhookChannel:
    format: str = "json"  # for addresses that carry no format
    secret_env: str | None = None
    timeout: float = 5.0
    trust_env: bool = True  # honour HTTP(S)_PROXY / NO_PROXY, as offices often need a proxy
    clock: Clock = field(default=utc_now)
    name: str = field(default="webhook", init=False)
    _client: httpx.Client | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"webhook format {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.timeout <= 0:
            raise ValueError("webhook timeout must be positive")

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    trust_env=self.trust_env,
                    follow_redirects=False,
                    headers={"User-Agent": "closeloop-notifier"},
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _secret(self, target: Target) -> str | None:
        env = target.secret_env or self.secret_env
        if env is None or target.format == "wecom":
            return None
        secret = os.environ.get(env, "")
        if not secret:
            raise DeliveryError(
                f"{target.format} webhook signing secret: environment variable {env} is not set",
                permanent=True,
            )
        return secret

    def request(self, message: Message) -> tuple[Target, str, dict[str, str], bytes]:
        """What would be posted for ``message``: (target, url, headers, body)."""
        try:
            target = parse_address(message.address, self.format)
        except ValueError as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        secret = self._secret(target)
        now = self.clock().timestamp()
        url = target.url
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.idempotency_key,
        }
        payload: dict[str, Any]
        if target.format == "dingtalk":
            payload = {
                "msgtype": "markdown",
                "markdown": {"title": message.subject, "text": message.markdown},
            }
            if secret is not None:
                ts_ms = int(now * 1000)
                sep = "&" if urllib.parse.urlsplit(url).query else "?"
                url = f"{url}{sep}timestamp={ts_ms}&sign={dingtalk_sign(secret, ts_ms)}"
        elif target.format == "wecom":
            payload = {
                "msgtype": "markdown",
                "markdown": {"content": truncate_utf8(message.markdown, WECOM_MARKDOWN_LIMIT)},
            }
        elif target.format == "feishu":
            payload = {
                "msg_type": "post",
                "content": {
                    "post": {
                        "zh_cn": {
                            "title": message.subject,
                            "content": [_feishu_line(line) for line in message.text.splitlines()],
                        }
                    }
                },
            }
            if secret is not None:
                ts_s = int(now)
                payload = {"timestamp": str(ts_s), "sign": feishu_sign(secret, ts_s), **payload}
        else:
            payload = {
                "kind": message.kind,
                "ticket_ref": message.ticket_ref,
                "recipient_name": message.recipient_name,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
                "markdown": message.markdown,
                "idempotency_key": message.idempotency_key,
                "attachments": [
                    {"filename": a.filename, "content_type": a.content_type, "size": len(a.data)}
                    for a in message.attachments
                ],
            }
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        if target.format == "json" and secret is not None:
            ts_s = int(now)
            headers["X-Closeloop-Timestamp"] = str(ts_s)
            headers["X-Closeloop-Signature"] = json_signature(secret, ts_s, body)
        return target, url, headers, body

    def send(self, message: Message) -> None:
        target, url, headers, body = self.request(message)
        # The URL holds the robot's token: errors name the host only.
        where = f"{target.format} webhook at {urllib.parse.urlsplit(url).netloc}"
        try:
            response = self.client().post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"{where} timed out after {self.timeout} s ({type(exc).__name__})", permanent=False
            ) from exc
        except httpx.TransportError as exc:
            raise DeliveryError(
                f"{where} unreachable: {type(exc).__name__}: {exc}", permanent=False
            ) from exc
        _check_response(target.format, where, response)


def _check_response(fmt: str, where: str, response: httpx.Response) -> None:
    status = response.status_code
    if not 200 <= status < 300:
        detail = f"{where} answered HTTP {status}: {response.text[:_BODY_IN_ERROR]}"
        retry = status in RETRYABLE_STATUS or status >= 500
        raise DeliveryError(detail, permanent=not retry)
    if fmt == "json":
        return
    try:
        answer = response.json()
    except ValueError as exc:
        raise DeliveryError(
            f"{where} answered HTTP {status} with no JSON: {response.text[:_BODY_IN_ERROR]}",
            permanent=True,
        ) from exc
    if not isinstance(answer, dict):
        raise DeliveryError(f"{where} answered {answer!r}", permanent=True)
    if fmt == "feishu":
        # Current robots say {"code": 0, "msg": ...}; older ones {"StatusCode": 0, ...}.
        code = answer.get("code", answer.get("StatusCode"))
        text = answer.get("msg", answer.get("StatusMessage", ""))
    else:
        code, text = answer.get("errcode"), answer.get("errmsg", "")
    if not isinstance(code, int):
        raise DeliveryError(
            f"{where} answered without an error code: {response.text[:_BODY_IN_ERROR]}",
            permanent=True,
        )
    if code != 0:
        raise DeliveryError(
            f"{where} refused the message: code {code}: {text}",
            permanent=code not in RETRYABLE_CODES[fmt],
        )
