"""The local stack's defaults that `python -m local run` offers as options: standard
library only, so `--help` and `make local`'s first checks run before anything is installed."""

# Worker processes per function, at most: up to two Lambda containers (the second starts
# when the first is busy, as Lambda scales out), enough to show races between
# invocations, few enough for a laptop (make bench and make soak use it too).
WORKERS = 2
# API Gateway closes a connection idle this long (10 minutes).
IDLE_TIMEOUT_S = 600.0
# On AWS a connection cannot be posted to until its handshake completes, a few to tens of
# milliseconds after $connect returns: a post in that window answers 410.
HANDSHAKE_DELAY_S = 0.05
