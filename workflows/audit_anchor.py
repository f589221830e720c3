"""The audit anchor: checkpoints of the audit chain's head, kept in Temporal.

Deleting the chain's last entries breaks no link between the entries left, so the chain alone
cannot show it. The anchor reads the chain's head every `interval_seconds` and keeps the recent
checkpoints (seq, hash, time, signed with the audit key) in its own state, which a database
writer cannot reach; `python -m store.audit verify` asks for them (the `checkpoints` query) and
checks that the chain still reaches each one with the same hash. A checkpoint the chain no
longer holds when the anchor looks again is kept apart (`disputed`) and logged, so the evidence
of a rewrite never rolls out of the window. One anchor per deployment (`audit_anchor_id`),
started by every worker with "use existing": many workers and restarts share it. Its history is
bounded by continuing as new.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.audit import (
        AuditAnchorInput,
        AuditCheckpoint,
        CheckpointAuditInput,
        CheckpointAuditResult,
    )
    from domain.contract import AUDIT_ANCHOR_WORKFLOW, CHECKPOINTS_QUERY
    from domain.messages import ActivityName
    from workflows.act import act

KEEP = 100  # recent checkpoints kept (and as many disputed ones)


@workflow.defn(name=AUDIT_ANCHOR_WORKFLOW)
class AuditAnchorWorkflow:
    @workflow.init
    def __init__(self, inp: AuditAnchorInput) -> None:
        self._checkpoints = list(inp.checkpoints)
        self._disputed = list(inp.disputed)

    @workflow.run
    async def run(self, inp: AuditAnchorInput) -> None:
        for _ in range(inp.rounds_per_run):
            last = self._checkpoints[-1] if self._checkpoints else None
            result = await act(
                ActivityName.CHECKPOINT_AUDIT,
                CheckpointAuditInput(last=last),
                CheckpointAuditResult,
            )
            if last is not None and not result.last_still_holds:
                workflow.logger.warning(
                    "audit chain no longer holds an anchored checkpoint",
                    extra={"seq": last.seq, "at": last.at.isoformat()},
                )
                self._disputed = [*self._disputed, last][-KEEP:]
            point = result.checkpoint
            if last is None or (point.seq, point.hash) != (last.seq, last.hash):
                self._checkpoints = [*self._checkpoints, point][-KEEP:]
            await workflow.sleep(timedelta(seconds=inp.interval_seconds))
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            inp.model_copy(update={"checkpoints": self._checkpoints, "disputed": self._disputed})
        )

    @workflow.query(name=CHECKPOINTS_QUERY)
    def checkpoints(self) -> list[AuditCheckpoint]:
        """Every checkpoint kept: the disputed ones, then the recent ones, oldest first."""
        return [*self._disputed, *self._checkpoints]
