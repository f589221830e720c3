"""The real worker, with a fault: it kills itself (SIGKILL) right after a chosen activity has
done its work and committed, before Temporal hears of the result: the worst moment, as the
effect is in the database and the step will run again. Once per activity name.

`FAULT_KILL_AFTER=validate_order,reserve_stock FAULT_MARKS=/tmp/dir python -m tests.fault_worker`
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

import worker


class KillAfter(Interceptor):
    def __init__(self, names: set[str], marks: Path) -> None:
        self.names = names
        self.marks = marks

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _KillAfterActivity(next, self)


class _KillAfterActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, fault: KillAfter) -> None:
        super().__init__(next)
        self.fault = fault

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await super().execute_activity(input)
        name = activity.info().activity_type
        if name in self.fault.names:
            try:  # O_EXCL: exactly one process, once, dies after this activity
                (self.fault.marks / name).touch(exist_ok=False)
            except FileExistsError:
                return result
            os.kill(os.getpid(), signal.SIGKILL)
        return result


if __name__ == "__main__":
    names = set(filter(None, os.environ.get("FAULT_KILL_AFTER", "").split(",")))
    asyncio.run(worker.main([KillAfter(names, Path(os.environ["FAULT_MARKS"]))]))
