"""$connect: authenticate the client and record connectionId -> userId (1 PutItem)."""

from chat.handlers import default_services, on_connect


def handler(event, context):
    return on_connect(event, default_services(), context)
