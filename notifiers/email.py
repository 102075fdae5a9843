"""Email channel: SMTP with STARTTLS, implicit TLS or plain, login from environment variables.

Each message becomes a multipart/alternative (text + HTML) mail, wrapped in multipart/mixed
when it has attachments. Headers are UTF-8 safe: Chinese subjects and display names are
encoded as RFC 2047 words, attachment names as RFC 2231 parameters.

The ticket reference is always in the subject (prefixed when the template left it out). The
Message-ID is derived from the idempotency key, so a resend after a crash carries the same
Message-ID and mail clients and archives show it as the same mail.

Login: when both environment variables named by ``user_env`` and ``password_env`` are set,
the channel logs in; when neither is, it sends without login (a local relay); one without
the other is a configuration error. They are read at every send, so a rotated password needs
no restart.

Errors: SMTP 5xx replies (refused login, refused recipient, refused message) and a server
without STARTTLS when it is required are permanent; 4xx replies, time-outs, dropped and
refused connections are worth a retry. A failure after the server accepted the message (while
saying QUIT) is ignored: the mail is delivered.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from notifiers.message import Clock, DeliveryError, Message, utc_now

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def message_id_for(idempotency_key: str, domain: str) -> str:
    """The Message-ID of every send of the message with this key."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<closeloop.{digest}@{domain}>"


def subject_with_ref(subject: str, ticket_ref: str | None) -> str:
    if ticket_ref and ticket_ref not in subject:
        return f"[{ticket_ref}] {subject}"
    return subject


@dataclass
class EmailChannel:
    host: str
    sender: str  # "开发区网格办 <grid@zone.example.gov.cn>" or a bare address
    port: int | None = None  # None: 587, 465 or 25 by security
    security: str = "starttls"
    user_env: str = "CLOSELOOP_SMTP_USER"
    password_env: str = "CLOSELOOP_SMTP_PASSWORD"
    timeout: float = 10.0
    ca_file: str | None = None  # a private CA for the server's certificate
    clock: Clock = field(default=utc_now)
    name: str = field(default="email", init=False)

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(
                f"email security {self.security!r} is not one of {', '.join(SECURITY_MODES)}"
            )
        if not self.host:
            raise ValueError("email host is empty")
        if self.timeout <= 0:
            raise ValueError("email timeout must be positive")
        display, addr = parseaddr(self.sender)
        if "@" not in addr:
            raise ValueError(f"email sender {self.sender!r} has no address")
        try:
            self._from = Address(display_name=display, addr_spec=addr)
        except (ValueError, IndexError, HeaderParseError) as exc:
            raise ValueError(f"email sender {self.sender!r} is not valid: {exc}") from exc
        self._domain = self._from.domain

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    def compose(self, message: Message) -> EmailMessage:
        """The mail for ``message``; raises a permanent DeliveryError for a bad address."""
        # A display name is one line whatever the data says; header injection stays impossible.
        display = " ".join(message.recipient_name.split())
        try:
            to = Address(display_name=display, addr_spec=message.address.strip())
        except (ValueError, IndexError, HeaderParseError) as exc:
            raise DeliveryError(
                f"not an email address: {message.address!r} ({exc})", permanent=True
            ) from exc
        if "@" not in to.addr_spec or not to.domain:
            raise DeliveryError(f"not an email address: {message.address!r}", permanent=True)
        mail = EmailMessage(policy=SMTP_POLICY)
        mail["Subject"] = subject_with_ref(message.subject, message.ticket_ref)
        mail["From"] = self._from
        mail["To"] = to
        mail["Date"] = format_datetime(self.clock())
        mail["Message-ID"] = message_id_for(message.idempotency_key, self._domain)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
        mail["X-Closeloop-Kind"] = message.kind
        if message.ticket_ref:
            mail["X-Closeloop-Ticket"] = message.ticket_ref
        mail.set_content(message.text, charset="utf-8")
        if message.html:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        for attachment in message.attachments:
            maintype, subtype, params = attachment.mime()
            mail.add_attachment(
                attachment.data,
                maintype=maintype,
                subtype=subtype,
                filename=attachment.filename,
                params=params,
            )
        return mail

    def _credentials(self) -> tuple[str, str] | None:
        user = os.environ.get(self.user_env, "")
        password = os.environ.get(self.password_env, "")
        if user and password:
            return user, password
        if user or password:
            missing = self.password_env if user else self.user_env
            raise DeliveryError(
                f"SMTP login needs both {self.user_env} and {self.password_env}; "
                f"{missing} is not set",
                permanent=True,
            )
        return None

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _connect(self) -> smtplib.SMTP:
        port = self.effective_port
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.host, port, timeout=self.timeout, context=self._tls_context()
            )
        smtp = smtplib.SMTP(self.host, port, timeout=self.timeout)
        if self.security == "starttls":
            try:
                smtp.ehlo()
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            except BaseException:
                smtp.close()
                raise
        return smtp

    def send(self, message: Message) -> None:
        mail = self.compose(message)
        credentials = self._credentials()
        where = f"SMTP {self.host}:{self.effective_port}"
        try:
            smtp = self._connect()
        except Exception as exc:
            raise _classify(exc, where) from exc
        try:
            if credentials is not None:
                smtp.login(*credentials)
            recipient = mail["To"].addresses[0].addr_spec
            smtp.sendmail(self._from.addr_spec, [recipient], mail.as_bytes())
        except Exception as exc:
            smtp.close()
            raise _classify(exc, where) from exc
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()  # accepted already: a lost QUIT must not cause a duplicate


def _classify(exc: Exception, where: str) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        replies = "; ".join(
            f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items()
        )
        return DeliveryError(
            f"{where} refused the recipient: {replies}",
            permanent=all(500 <= code < 600 for code in codes),
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        # Login refused (535), sender refused, message refused, bad greeting: 5xx is final.
        what = {
            smtplib.SMTPAuthenticationError: "refused the login",
            smtplib.SMTPSenderRefused: "refused the sender",
            smtplib.SMTPDataError: "refused the message",
            smtplib.SMTPConnectError: "refused the connection",
            smtplib.SMTPHeloError: "refused HELO",
        }.get(type(exc), "answered")
        return DeliveryError(
            f"{where} {what}: {exc.smtp_code} {_text(exc.smtp_error)}",
            permanent=500 <= exc.smtp_code < 600,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where}: {exc} (check `security`)", permanent=True)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{where} closed the connection: {exc}", permanent=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"{where} certificate not trusted: {exc}", permanent=True)
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"{where} timed out: {exc}", permanent=False)
    if isinstance(exc, OSError):
        return DeliveryError(f"{where} connection failed: {exc}", permanent=False)
    if isinstance(exc, smtplib.SMTPException):
        # e.g. "No suitable authentication method found": the server and config disagree.
        return DeliveryError(f"{where}: {exc}", permanent=True)
    raise exc


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
