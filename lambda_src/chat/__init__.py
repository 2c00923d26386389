"""Runtime code shared by the three Lambda functions (../connect.py, ../disconnect.py,
../message.py). One client frame reads top to bottom through:

handlers.py       the event in: parse the frame, find the caller, run the action, errors as frames
actions.py        what each client action does (by_name lists them)
connections.py    the Connections table: who is connected, and when each user was last seen
messages.py       the Messages and Contents tables, and Message: a message as the code sees it
conversations.py  the Conversations table: each conversation's pair, and each user's list
delivery.py       connections as API Gateway has them: posting frames, forgetting the gone
push.py           a message that reached no device: one event on the push bus (EventBridge)
protocol.py       the wire format: frames in (parsing, validation) and frames out

and beside them: contract.py (what the stack and the functions share), tables.py (the
three stores, opened together), dynamo.py (what the stores share), auth.py and tokens.py
(who connects), config.py (settings from the environment), aws.py (boto3 clients,
created lazily, and time limits), log.py (one JSON line per event), timing.py.
docs/design.md says why the tables and the delivery are as they are. Nothing here
imports aws_cdk; only the standard library and the runtime's boto3.
"""
