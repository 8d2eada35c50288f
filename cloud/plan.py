"""Planned changes of a command in Azure, printed by ``--dry-run`` without calling Azure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class PlannedChange:
    """One resource a command would create, reuse, change or delete, with its cost-relevant settings."""

    action: str
    resource: str
    name: str
    settings: dict = field(default_factory=dict)
    cost: str = ""


def render_plan(
    changes: Iterable[PlannedChange], workspace_line: str, auth_method: str, warnings: Iterable[str] = ()
) -> list[str]:
    """Return the dry-run report as lines: the workspace, one block per planned change, then warnings."""
    lines = ["dry run: nothing is sent to Azure", f"  {workspace_line}", f"  auth: {auth_method}"]
    for change in changes:
        lines.append(f"would {change.action} {change.resource} {change.name!r}")
        width = max((len(key) for key in change.settings), default=0)
        for key, value in change.settings.items():
            lines.append(f"    {key.ljust(width)}  {value}")
        if change.cost:
            lines.append(f"    cost: {change.cost}")
    lines.extend(f"warning: {warning}" for warning in warnings)
    return lines
