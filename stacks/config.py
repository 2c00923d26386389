"""Every context key the app reads, with its default. app.py parses them once; no
Construct reads context or environment variables itself.

Context comes from cdk.json or ``-c key=value`` (always a string on the command line).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .functions import RETENTION

BASE_STACK_NAME = "RealtimeMessaging"
# API Gateway caps every frame at 32 KB, and a reply's frame holds its content and the
# quoted original's: 2 x 12 KiB leaves 8 KiB for the other fields (ids, names, times),
# enough for them all at their maximum (tests/unit/test_frame_limits.py).
MAX_CONTENT_BYTES_LIMIT = 12 * 1024

# Every context key the app reads, with its default: the one place a default lives.
# A default is parsed and checked like a value given with -c. The README's
# configuration table is checked against this (tests/infra/test_config.py).
DEFAULTS: dict[str, Any] = {
    "instance": "",
    "stage": "production",
    "auth": "cognito",
    "userPoolId": "",
    "userPoolClientIds": "",
    "userPoolIssuer": "original",
    "connectionTtlHours": 24,
    "maxContentBytes": 12288,
    "logRetentionDays": 14,
    "retainData": False,
    "throttleRate": 100,
    "throttleBurst": 200,
    "connectThrottleRate": 10,
    "connectThrottleBurst": 20,
    "accessLogs": False,
    "keepConversationIndex": False,
    "domainName": "",
    "certificateArn": "",
    "alarmEmail": "",
    "pushPreview": False,
    "memoryMb": 1024,  # docs/performance.md, "Memory"
}


# The last version whose upgrade steps reach a stack from before ack mode, conversations
# or the Contents table (README, Upgrading).
BEFORE_HISTORY_INDEX = "2cdfab4"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StackConfig:
    instance: str
    stage: str
    auth: str
    user_pool_id: str | None
    user_pool_client_ids: tuple[str, ...]
    user_pool_issuer: str  # original (https://cognito-idp...) or updated (https://issuer-cognito-idp...)
    connection_ttl_hours: int
    max_content_bytes: int
    log_retention_days: int
    retain_data: bool
    throttle: tuple[int, int]  # the stage: (requests per second, burst)
    connect_throttle: tuple[int, int]  # $connect
    access_logs: bool
    keep_conversation_index: bool  # for the two-step upgrade of a stack from before history-index
    domain_name: str | None  # a custom domain for the stage, with
    certificate_arn: str | None  # its ACM certificate, in the stack's region
    alarm_email: str | None  # subscribed to the alarms' SNS topic
    push_preview: bool  # push events carry the message's content
    memory_mb: int  # each function's memory (Lambda gives CPU in proportion: 1,769 MB is one vCPU)

    @property
    def stack_name(self) -> str:
        return f"{BASE_STACK_NAME}-{self.instance}" if self.instance else BASE_STACK_NAME

    @classmethod
    def from_context(cls, get_context: Callable[[str], Any]) -> StackConfig:
        """Build from ``node.try_get_context``; raises ConfigError with a fix-it message."""

        def get(key: str):
            value = get_context(key)
            return DEFAULTS[key] if value is None else value

        # checked in this order: the first bad value is the one reported
        _refuse_retired(get_context)
        instance, stage, auth = _instance(get), _stage(get), _auth(get)
        pool_id, client_ids = _user_pool(get)
        domain_name, certificate_arn = _domain(get)
        pool_issuer, alarm_email, retention = _pool_issuer(get), _alarm_email(get), _log_retention(get)
        return cls(
            instance=instance,
            stage=stage,
            auth=auth,
            user_pool_id=pool_id,
            user_pool_client_ids=client_ids,
            user_pool_issuer=pool_issuer,
            connection_ttl_hours=_int(get("connectionTtlHours"), "connectionTtlHours", 1, 24 * 30),
            max_content_bytes=_int(get("maxContentBytes"), "maxContentBytes", 1, MAX_CONTENT_BYTES_LIMIT),
            log_retention_days=retention,
            retain_data=_bool(get("retainData"), "retainData"),
            throttle=(
                _int(get("throttleRate"), "throttleRate", 1, 10_000),
                _int(get("throttleBurst"), "throttleBurst", 1, 5_000),
            ),
            connect_throttle=(
                _int(get("connectThrottleRate"), "connectThrottleRate", 1, 10_000),
                _int(get("connectThrottleBurst"), "connectThrottleBurst", 1, 5_000),
            ),
            access_logs=_bool(get("accessLogs"), "accessLogs"),
            keep_conversation_index=_bool(get("keepConversationIndex"), "keepConversationIndex"),
            domain_name=domain_name,
            certificate_arn=certificate_arn,
            alarm_email=alarm_email,
            push_preview=_bool(get("pushPreview"), "pushPreview"),
            memory_mb=_int(get("memoryMb"), "memoryMb", 128, 10_240),
        )


def _refuse_retired(get_context: Callable[[str], Any]) -> None:
    if _text(get_context("keepUserIdIndex")).lower() not in ("", "none", "false"):
        raise ConfigError(
            "keepUserIdIndex was for upgrading a stack from before ack mode, which this version cannot do in "
            "one deploy per index: upgrade it with the version before history-index first (git checkout "
            f"{BEFORE_HISTORY_INDEX}; README, Upgrading), then with this one"
        )


def _instance(get: Callable[[str], Any]) -> str:
    instance = _text(get("instance"))
    if instance and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,29}", instance):
        raise ConfigError("instance must start with a letter and use only letters, digits and '-' (max 30)")
    return instance


def _stage(get: Callable[[str], Any]) -> str:
    stage = _text(get("stage"))
    if not re.fullmatch(r"[A-Za-z0-9_]{1,128}", stage):
        raise ConfigError("stage must be 1-128 letters, digits or '_' (API Gateway's rule for stage names)")
    return stage


def _auth(get: Callable[[str], Any]) -> str:
    auth = _text(get("auth"))
    if auth not in ("cognito", "dev"):
        raise ConfigError("auth must be 'cognito' (default) or 'dev'")
    return auth


def _user_pool(get: Callable[[str], Any]) -> tuple[str | None, tuple[str, ...]]:
    """An existing pool: its id and its app clients' ids, or (None, ())."""
    pool_id = _text(get("userPoolId")) or None
    client_ids = _list(get("userPoolClientIds"))
    if bool(pool_id) != bool(client_ids):
        raise ConfigError("userPoolId and userPoolClientIds go together: give both to use an existing pool, or neither")
    if pool_id and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+", pool_id):
        raise ConfigError(f"userPoolId {pool_id!r} does not look like <region>_<id>, e.g. us-east-1_AbC123")
    return pool_id, client_ids


def _domain(get: Callable[[str], Any]) -> tuple[str | None, str | None]:
    """A custom domain: its name and its ACM certificate's ARN, or (None, None)."""
    domain_name, certificate_arn = _text(get("domainName")).lower() or None, _text(get("certificateArn")) or None
    if bool(domain_name) != bool(certificate_arn):
        raise ConfigError("domainName and certificateArn go together: give both for a custom domain, or neither")
    if domain_name and not re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", domain_name):
        raise ConfigError(f"domainName {domain_name!r} is not a domain name like chat.example.com")
    if certificate_arn and not re.fullmatch(
        r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+", certificate_arn
    ):
        raise ConfigError(
            f"certificateArn {certificate_arn!r} is not an ACM certificate ARN "
            "(arn:aws:acm:<region>:<account>:certificate/<id>, in the stack's region)"
        )
    return domain_name, certificate_arn


def _pool_issuer(get: Callable[[str], Any]) -> str:
    pool_issuer = _text(get("userPoolIssuer")).lower()
    if pool_issuer not in ("original", "updated"):
        raise ConfigError(
            "userPoolIssuer must be 'original' (tokens from https://cognito-idp.<region>...) or 'updated' "
            "(https://issuer-cognito-idp.<region>...), as the pool's issuer configuration says"
        )
    return pool_issuer


def _alarm_email(get: Callable[[str], Any]) -> str | None:
    alarm_email = _text(get("alarmEmail")) or None
    if alarm_email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", alarm_email):
        raise ConfigError(f"alarmEmail {alarm_email!r} is not an email address")
    return alarm_email


def _log_retention(get: Callable[[str], Any]) -> int:
    retention = _int(get("logRetentionDays"), "logRetentionDays", 1, 3653)
    if retention not in RETENTION:
        raise ConfigError(f"logRetentionDays must be one of CloudWatch's values: {tuple(RETENTION)}")
    return retention


def _text(value) -> str:
    return str(value).strip()


def _list(value) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(v).strip() for v in items if str(v).strip())


def _int(value, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{name} must be between {low} and {high}")
    return number


def _bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")
