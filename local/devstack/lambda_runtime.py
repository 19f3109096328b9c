"""Run a built function's handler the way the Lambda Python runtime does (no Docker).

    python -I lambda_runtime.py EVENT_FILE

Run it with an interpreter that has only boto3 installed (the runtime ships boto3) and
LAMBDA_TASK_ROOT set to the built function's directory, which goes first on sys.path, as
/var/task does in Lambda. It imports nothing from this repository: only the standard
library, then the handler named by _HANDLER. The handler is called LAMBDA_INVOCATIONS times
in this one process (a cold start, then warm ones), each with a fresh context whose clock
starts at the call. The last line of standard output is `RESULT {json}`: each call's return
value (or, for a call that raised, Lambda's `{"errorType", "errorMessage"}`), and the file
every loaded module came from. The handler's own output (its log lines) comes before it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class LambdaContext:
    def __init__(self, timeout_ms: int) -> None:
        self.deadline = time.monotonic() + timeout_ms / 1000
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "poller")
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:{self.function_name}"
        )
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"))
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)


def invoke(handler: Any, event: Any, context: LambdaContext) -> Any:
    """The handler's return value, or what Lambda returns for an invocation that raised."""
    try:
        return handler(event, context)
    except Exception as exc:
        traceback.print_exc()
        return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def main() -> None:
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    sys.path.insert(0, task_root)
    module_name, function_name = os.environ["_HANDLER"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    with open(sys.argv[1], encoding="utf-8") as file:
        event = json.load(file)
    timeout_ms = int(os.environ["LAMBDA_TIMEOUT_MS"])
    results = [
        invoke(handler, event, LambdaContext(timeout_ms))
        for _ in range(int(os.environ.get("LAMBDA_INVOCATIONS", "1")))
    ]
    files = {
        name: module.__file__
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
    }
    print("RESULT " + json.dumps({"results": results, "module_files": files}), flush=True)


if __name__ == "__main__":
    main()
