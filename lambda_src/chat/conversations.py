"""The Conversations table: who may see a conversation, and each user's list.

Access patterns (docs/design.md has the why):
- a conversation's pair, its "#pair" row (memberA <= memberB), claimed by its first
  message and never changed: cached per container;
- whether two users share any conversation: the pair row of their canonical one;
- each user's conversations, latest activity first: their own row of each (peerId,
  updatedAt, lastMessageId), on conversations-by-user.
"""

from __future__ import annotations

from collections import OrderedDict

from . import contract
from .aws import error_code
from .dynamo import batch_get, from_item, if_condition_holds, key, ordered, to_item
from .timing import now_iso

PAIR = "#pair"  # the sort key of a conversation's own row; user ids cannot contain "#"
CACHE_SIZE = 10_000  # pairs remembered per container


class ConversationsTable:
    def __init__(self, db, name: str):
        self.db, self.name = db, name
        self._pairs: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def pair(self, conversation_id: str) -> tuple[str, str] | None:
        """The conversation's two users (sorted), or None if it does not exist."""
        found = self._pairs.get(conversation_id)
        if found is None:
            item = self.db.get_item(
                TableName=self.name, Key=key(conversationId=conversation_id, userId=PAIR), ConsistentRead=True
            ).get("Item")
            if item is None:
                return None
            found = self._remember(conversation_id, from_item(item))
        return found

    def claim(self, conversation_id: str, user_a: str, user_b: str) -> tuple[str, str]:
        """Make the conversation theirs if nobody has; returns the pair that has it (the
        first claim wins a race)."""
        row = _pair_row(conversation_id, user_a, user_b)
        try:
            self.db.put_item(
                TableName=self.name,
                Item=to_item(row),
                ConditionExpression="attribute_not_exists(userId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item")
            return self._remember(conversation_id, from_item(old)) if old else self.pair(conversation_id)
        return self._remember(conversation_id, row)

    def add_contact(self, conversation_id: str, user_a: str, user_b: str) -> None:
        """The pair row of their canonical conversation, which says they share one (the
        same two users every time: writing it again changes nothing)."""
        self.db.put_item(TableName=self.name, Item=to_item(_pair_row(conversation_id, user_a, user_b)))

    def existing(self, conversation_ids: list[str]) -> set[str]:
        """Which of these conversations exist (up to 100)."""
        keys = [key(conversationId=c, userId=PAIR) for c in dict.fromkeys(conversation_ids)]
        return {row["conversationId"] for row in batch_get(self.db, {self.name: keys})[self.name]}

    def _remember(self, conversation_id: str, row: dict) -> tuple[str, str]:
        pair = self._pairs[conversation_id] = (row["memberA"], row["memberB"])
        if len(self._pairs) > CACHE_SIZE:
            self._pairs.popitem(last=False)
        return pair

    def touch(self, conversation_id: str, user_id: str, peer_id: str, message_id: str, sent_at: str) -> None:
        """The user's row of the conversation: its latest message, which puts it first
        in their list. Only moves forward, so sends that race leave the latest."""
        if_condition_holds(
            self.db.update_item,
            TableName=self.name,
            Key=key(conversationId=conversation_id, userId=user_id),
            UpdateExpression="SET peerId = :p, updatedAt = :t, lastMessageId = :m",
            ConditionExpression="attribute_not_exists(updatedAt) OR updatedAt <= :t",
            ExpressionAttributeValues=to_item({":p": peer_id, ":t": sent_at, ":m": message_id}),
        )

    def of_user(self, user_id: str, after: tuple[str, str] | None, page_size: int):
        """The user's conversation rows, latest activity first, from after the
        (updatedAt, conversationId) position if given."""
        return ordered(
            self.db,
            self.name,
            contract.CONVERSATIONS_BY_USER,
            ("userId", user_id),
            ("updatedAt", "conversationId"),
            after=after,
            page_size=page_size,
            forward=False,
        )


def _pair_row(conversation_id: str, user_a: str, user_b: str) -> dict:
    first, second = sorted((user_a, user_b))
    row = {"conversationId": conversation_id, "userId": PAIR, "memberA": first, "memberB": second}
    return {**row, "createdAt": now_iso()}
