"""The README is the front door: its diagram matches the rules, and its Python tour runs."""

from __future__ import annotations

import re
from pathlib import Path

from creditledger.domain.rules import mermaid_diagram

README = Path(__file__).resolve().parents[1] / "README.md"
DIAGRAM = re.compile(
    r"<!-- state-diagram:begin -->\n```mermaid\n(.*?)```\n<!-- state-diagram:end -->", re.DOTALL
)


def test_the_readme_state_diagram_is_generated_from_the_transition_table() -> None:
    found = DIAGRAM.search(README.read_text())
    assert found is not None, "README lost its state-diagram markers"
    assert found.group(1) == mermaid_diagram(), (
        "README diagram drifted from domain/rules.py; regenerate with: "
        "python -c 'from creditledger.domain.rules import mermaid_diagram; "
        'print(mermaid_diagram(), end="")\''
        " and paste it between the state-diagram markers"
    )


def test_the_readme_python_examples_outside_the_tour_run() -> None:
    # The tour's blocks (marked <!-- tour -->) write to the default store: they run, in order, in
    # a directory of their own, in tests/e2e/test_readme_tour.py.
    blocks = re.findall(r"(<!-- tour -->\n)?```python\n(.*?)```", README.read_text(), re.DOTALL)
    examples = [block for marker, block in blocks if not marker]
    assert examples, "README has no Python example outside the tour"
    for block in examples:
        exec(compile(block, str(README), "exec"), {})  # noqa: S102 - the README is ours
