"""Infrastructure only: one Stack (messaging_stack.py) built from small Constructs.

storage.py    the four DynamoDB tables and their indexes
identity.py   the Cognito user pool (created, or an existing one)
functions.py  the three Lambda functions and their log groups
api.py        the WebSocket API, its routes and the stage
config.py     every context key, parsed and checked once
contract.py   the facts shared with the functions (lambda_src/chat/contract.py): actions, index names, limits
"""
