"""The public prices docs/cost.md and `make cpu` use: US East (N. Virginia), USD, on-demand,
without free tiers, as read on 2026-11-27. Check them against the pages before you rely on
them: prices change, and differ by region.

Lambda: https://aws.amazon.com/lambda/pricing/ (arm64, the first tier, 7.5 billion GB-s a
  month; requests; 1 ms billing). CPU in proportion to memory, one vCPU at 1,769 MB:
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
API Gateway: https://aws.amazon.com/api-gateway/pricing/ (WebSocket APIs: messages, the
  first billion a month, metered in 32 KB increments; connection minutes)
DynamoDB: https://aws.amazon.com/dynamodb/pricing/on-demand/ (Standard table class, after
  the cut of 1 November 2024)
EventBridge: https://aws.amazon.com/eventbridge/pricing/ (custom events, per 64 KB chunk)
"""

VCPU_MB = 1769  # Lambda: a function with this much memory has one vCPU's worth of CPU

LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
WEBSOCKET_MESSAGE = 1.00 / 1e6  # each 32 KB of a frame, in either direction
WEBSOCKET_CONNECTION_MINUTE = 0.25 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6
DYNAMODB_READ_UNIT = 0.125 / 1e6
EVENTBRIDGE_EVENT = 1.00 / 1e6


def lambda_ms(cpu_ms: float, wait_ms: float, memory_mb: int) -> float:
    """An invocation's duration on Lambda at this memory, modelled: its CPU time, stretched
    where the function has less than a vCPU, and its waits on the network, which are not."""
    return cpu_ms * max(1.0, VCPU_MB / memory_mb) + wait_ms


def gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """What Lambda bills for an invocation of that duration at that memory."""
    return duration_ms / 1000 * memory_mb / 1024
