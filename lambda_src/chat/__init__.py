"""Runtime code shared by the three Lambda functions (../connect.py, ../disconnect.py,
../message.py). One client frame reads top to bottom through:

handlers.py  the event in: parse the frame, find the caller, run the action, errors as frames
actions.py   what each client action does (ACTIONS lists them)
store.py     the DynamoDB tables: connections and messages, with the message status
delivery.py  posting frames to connections through the @connections API
push.py      a message that reached no device: one event on the push bus (EventBridge)
protocol.py  the wire format: frames in (parsing, validation) and frames out

and beside them: auth.py and tokens.py (who connects), config.py (settings from the
environment), aws.py (boto3 clients, created lazily), log.py (one JSON line per event).
Nothing here imports aws_cdk; only the standard library and the runtime's boto3.
"""
