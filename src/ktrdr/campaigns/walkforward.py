"""Driving one walk-forward campaign (windows -> in-sample sweeps -> out-of-sample runs)."""

from __future__ import annotations

from ktrdr.campaigns.chunks import CampaignFailed, Driving
from ktrdr.operations.schemas import OperationPublic


def drive_walkforward(
    driver: Driving, parent: OperationPublic, children: list[OperationPublic]
) -> list[tuple[str, str]]:
    raise CampaignFailed("walk-forward campaigns are not available in this version yet")
