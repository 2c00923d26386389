"""Every client frame: each client action's route (chat/contract.py ACTIONS) and $default."""

from chat.handlers import default_services, on_message


def handler(event, context):
    return on_message(event, context, default_services())
