"""$disconnect: forget the connection (1 DeleteItem). Runs on every close, clean or not."""

from chat.handlers import default_services, on_disconnect


def handler(event, context):
    return on_disconnect(event, default_services(), context)
