"""The local stack (`make local`): the synthesized template run on this machine.

__main__.py        the command line: python -m local run | token | check-state
defaults.py        the options' defaults (workers, idle timeout, handshake delay): standard library only
state_lock.py      one stack per state directory: a second make local stops at once, saying why
stack.py           reads cdk.out and starts the parts below, in order
template.py        what the template says: tables, functions, routes, stage
dynamodb.py        dynalite, the DynamoDB-compatible server, and the IAM check the functions reach it through
iam.py             IAM: each function's role read from the template, and AWS's policy evaluation
lambda_pool.py     one pool of containers (processes) per function
container_server.py the process that has imported boto3 and forks each container
lambda_runtime.py  the container process: imports a handler and runs invocations
gateway.py         the WebSocket side of API Gateway: $connect, frames, $disconnect
events.py          the Lambda events API Gateway sends
routing.py         route selection ($request.body.action, else $default)
connections_api.py the @connections API the message function posts to
eventbridge.py     the template's event bus: PutEvents, and GET /@local/events
issuer.py          a local token issuer for AUTH=token, with its JWKS
launcher.py        starts the whole local stack as a child process (bench, tests)
ports.py           free ports and waiting for a listener
waiting.py         wait_until / until: wait on a condition (tests, bench, soak)
children.py        child processes that die with the local stack
"""
