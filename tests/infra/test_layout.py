"""The layout of stacks/: its map (stacks/__init__.py) names every file, and no function
grows past what a reader takes in at once."""

from __future__ import annotations

import ast
import re

import stacks
from synth import ROOT

STACKS = ROOT / "stacks"
LONGEST_FUNCTION = 50  # lines


def test_the_package_docstring_maps_every_file_in_stacks_and_no_other():
    # Given the file names the docstring lists at the start of its lines
    listed = set(re.findall(r"^(\w+\.py) ", stacks.__doc__, re.M))
    # Then they are the package's files
    assert listed == {p.name for p in STACKS.glob("*.py")} - {"__init__.py"}


def test_no_function_in_stacks_is_longer_than_a_screen():
    # Given every function and method in stacks/, nested ones included
    too_long = [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(STACKS.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    # Then none is longer: split it (a construct per concern, a method per resource)
    assert too_long == []
