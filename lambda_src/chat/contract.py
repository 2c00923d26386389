"""What the stack (stacks/) and the functions (chat/) must agree on, each fact once.

Data only, no imports: stacks/contract.py loads this file by its path, so the stack
reads these values without importing any runtime code. tests/unit/test_contract.py
checks the docs against it.
"""

# Every client action: a route of the WebSocket API (stacks/api.py) and an entry of
# chat.actions.ACTIONS. $connect, $disconnect and $default are API Gateway's own.
ACTIONS = (
    "sendMessage",
    "sync",
    "markDelivered",
    "markRead",
    "deleteMessage",
    "conversations",
    "history",
    "typing",
    "presence",
)

# The tables' indexes (stacks/storage.py builds them; docs/design.md says what each serves).
CONNECTIONS_BY_USER = "connections-by-user"
PENDING_INDEX = "pending-index"
HISTORY_INDEX = "history-index"
# history-index's predecessor, kept for one deploy while history-index is built (README, Upgrading)
OLD_HISTORY_INDEX = "conversation-index"
REPLIES_INDEX = "replies-index"
UNREAD_INDEX = "unread-index"
CONVERSATIONS_BY_USER = "conversations-by-user"
INDEXES = (
    CONNECTIONS_BY_USER,
    PENDING_INDEX,
    HISTORY_INDEX,
    REPLIES_INDEX,
    UNREAD_INDEX,
    CONVERSATIONS_BY_USER,
)

# The push hand-off's events: the message function may put only these (its IAM condition).
PUSH_SOURCE = "realtime-messaging"
PUSH_DETAIL_TYPE = "MessageWaiting"

# The custom metrics' CloudWatch namespace (chat/log.py writes them, the alarms read them).
METRICS_NAMESPACE = "RealtimeMessaging"

# API Gateway's WebSocket limits. A frame, either way: a larger client frame closes the
# connection (1009), a larger @connections post is refused (413). An integration answers
# within 29 s, the message function's time limit. A connection lives 2 hours at most.
FRAME_LIMIT_BYTES = 32 * 1024
INTEGRATION_TIMEOUT_S = 29
MAX_CONNECTION_SECONDS = 2 * 3600

# A user id, whole (fullmatch), and the rule in words for error messages. No "#": the
# stores keep it for their own rows.
USER_ID_PATTERN = r"[A-Za-z0-9_.@:+=-]{1,128}"
USER_ID_RULE = "1-128 of A-Z a-z 0-9 _ . @ : + = -"
ID_MAX_CHARS = 128
NAME_MAX_CHARS = 256  # a senderName, or a token's name

# What a reply copies of the message it quotes; it goes when that message is deleted.
QUOTE_FIELDS = ("replyToContent", "replyToSenderName")
