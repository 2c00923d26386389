"""chat/contract.py holds each fact the stack and the functions share, once: it stays
data the stack can read without running the functions' code, the code on both sides
uses it, and the docs say what it says."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

from chat import contract
from chat.actions import by_name
from stacks.contract import contract as stacks_contract

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_the_contract_is_data_the_stack_can_read_without_the_functions_code():
    tree = ast.parse((ROOT / "lambda_src" / "chat" / "contract.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Call)]
    # the stack's copy is this very file
    assert {k: v for k, v in vars(stacks_contract).items() if k.isupper()} == {
        k: v for k, v in vars(contract).items() if k.isupper()
    }


def test_every_client_action_is_handled_in_the_contracts_order():
    assert tuple(by_name(SimpleNamespace(max_content_bytes=1))) == contract.ACTIONS


def test_the_docs_name_every_action_and_index():
    # the README's diagram: the message function's routes, and each table's indexes
    diagram = README.split("```mermaid", 1)[1].split("```", 1)[0]
    [routes] = re.findall(r'"(sendMessage[^"]*)"', diagram)
    assert routes.replace("<br/>", " · ").split(" · ") == [*contract.ACTIONS, "$default"]
    for index in contract.INDEXES:
        assert index in diagram, index
    # the protocol: a section per action
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    assert re.findall(r"^### `(\w+)`$", protocol, re.M) == list(contract.ACTIONS)
    # what a deployer routes and watches
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert f'"source": "{contract.PUSH_SOURCE}"' in operations
    assert f'"detail-type": "{contract.PUSH_DETAIL_TYPE}"' in operations
    assert f"Namespace\n`{contract.METRICS_NAMESPACE}`" in operations or f"`{contract.METRICS_NAMESPACE}`" in operations


def test_the_docs_give_the_limits_the_contract_sets():
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    assert (
        f"{contract.FRAME_LIMIT_BYTES // 1024} KB" in README and f"{contract.FRAME_LIMIT_BYTES // 1024} KB" in protocol
    )
    count, characters = contract.USER_ID_RULE.split(" of ")
    assert f"a user id: {count.replace('-', '–')} of `{characters}`" in protocol
    assert f"{contract.INTEGRATION_TIMEOUT_S} s" in (ROOT / "docs" / "operations.md").read_text()
