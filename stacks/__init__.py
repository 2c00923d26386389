"""Infrastructure only: one Stack (messaging_stack.py) built from small Constructs, each of
which grants what it owns (tests/infra/test_layout.py checks this list against the files).

messaging_stack.py the Stack: joins the constructs below, its outputs
storage.py         the four DynamoDB tables and their indexes, and each function's grants on them
identity.py        the Cognito user pool (created, or an existing one)
functions.py       the three Lambda functions, their log groups and roles
api.py             the WebSocket API, its routes and the stage, and the grant to post to connections
push.py            the push bus, and the message function's grant to put push events on it
monitoring.py      the alarms, their SNS topic, and the dashboard
config.py          every context key, parsed and checked once
contract.py        the facts shared with the functions (lambda_src/chat/contract.py): actions, index names, limits
lifecycle.py       what the stack keeps when it is deleted (context retainData)
preflight.py       make deploy's checks before a deploy (python -m stacks.preflight)
"""
