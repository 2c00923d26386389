"""The three table stores a function works with, opened together on one client."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .connections import ConnectionsTable
from .conversations import ConversationsTable
from .dynamo import measure_capacity
from .messages import MessagesTable


@dataclass
class Tables:
    connections: ConnectionsTable
    messages: MessagesTable  # with Contents: what each message says
    conversations: ConversationsTable

    @classmethod
    def open(
        cls,
        client,
        *,
        connections: str,
        messages: str,
        conversations: str,
        contents: str,
        history_index: str,
        clock=time.time,
    ) -> Tables:
        """The table names and the index history reads, as chat.config.Settings.tables gives them."""
        measure_capacity(client)
        return cls(
            ConnectionsTable(client, connections, clock),
            MessagesTable(client, messages, contents, history_index, clock),
            ConversationsTable(client, conversations),
        )
