"""The push hand-off: a message that reached no device of its recipient becomes one
event on the stack's EventBridge bus, for rules to route to a push provider (APNs or
FCM through SNS, an API destination; docs/operations.md). Its detail names the message;
its content only with pushPreview.

A push is a hint: the message is stored and waits for sync either way, so a failed
hand-off is logged and counted (FailedPushEvents), never an error for the sender.
PutEvents is not idempotent, so a call that times out is not retried (a retry of one
that landed would wake the phone twice); an entry EventBridge refuses as throttled or
failed internally (a 200 answer, nothing stored) is tried once more.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from . import contract
from .aws import error_code
from .log import count, log
from .messages import Message

# What EventBridge rules match on (docs/operations.md)
SOURCE = contract.PUSH_SOURCE
DETAIL_TYPE = contract.PUSH_DETAIL_TYPE
FIELDS = ("recipientId", "messageId", "conversationId", "senderId", "senderName", "sentAt")
# Entry error codes PutEvents documents as worth retrying
RETRYABLE = ("ThrottlingException", "InternalFailure")
ATTEMPTS = 2


class PushHandoff:
    def __init__(self, events: Callable[[], object], bus_name: str, preview: bool):
        self.events = events  # -> a boto3 events client, made on the first hand-off
        self.bus_name = bus_name
        self.preview = preview

    def entry(self, message: Message) -> dict:
        attributes = message.attributes()
        detail = {field: attributes.get(field) for field in FIELDS}
        if self.preview:
            detail["content"] = message.content
        return {
            "EventBusName": self.bus_name,
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail, separators=(",", ":")),
        }

    def hand_off(self, message: Message) -> bool:
        """True if EventBridge took the event. (On AWS it takes one for a bus that does
        not exist, too, and drops it: docs/operations.md.)"""
        entries = [self.entry(message)]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self.events().put_events(Entries=entries)
            except Exception as exc:
                log("warning", "push_failed", error=type(exc).__name__, awsErrorCode=error_code(exc) or None)
                break
            if not response.get("FailedEntryCount"):
                log("info", "push_handed_off", messageId=message.message_id)
                count("PushEvents")
                return True
            refused = (response.get("Entries") or [{}])[0]  # a 200 answer, with the entry refused
            if refused.get("ErrorCode") not in RETRYABLE or attempt == ATTEMPTS:
                log("warning", "push_failed", awsErrorCode=refused.get("ErrorCode"), reason=refused.get("ErrorMessage"))
                break
        count("FailedPushEvents")
        return False
