"""The local stack: the synthesized template run on this machine (see issue 3)."""
