"""sendMessage, sync, markRead, deleteMessage and $default: every client frame."""

from chat.handlers import default_services, on_message


def handler(event, context):
    return on_message(event, context, default_services())
