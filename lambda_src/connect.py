"""$connect: authenticate the client and record connectionId -> userId (1 PutItem)."""

from chat.actions import default_services, on_connect


def handler(event, context):
    return on_connect(event, default_services())
