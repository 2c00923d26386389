"""The facts the stack shares with the functions, read from lambda_src/chat/contract.py
(data only) by its path: the stack never imports the functions' code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "lambda_src" / "chat" / "contract.py"
_spec = importlib.util.spec_from_file_location("stacks._chat_contract", _PATH)
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)
