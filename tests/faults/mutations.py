"""Mutation check of the fault campaign: remove one behaviour at a time, run the campaign,
and see which assertion catches it.

    .venv/bin/python tests/faults/mutations.py            # every mutation (about 1 min each)
    .venv/bin/python tests/faults/mutations.py collapse   # some of them
    .venv/bin/python tests/faults/mutations.py --tests tests/unit tests/faults hidden-retry
    .venv/bin/python tests/faults/mutations.py --tests tests/unit       # the unit tests only

Each mutant is a copy of src/poller with one edit, put first on PYTHONPATH for pytest and
for the poller processes it starts; the working tree is never touched. A mutant "survives"
if the campaign still passes: that behaviour is then not proven by the campaign. Not
collected by pytest (the name does not start with test_).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: name -> (what is removed, [(file under src/poller, old text, new text), ...])
MUTATIONS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "collapse": (
        "duplicates of a merge key in the buffer are not collapsed into one record",
        [
            (
                "drain/assembler.py",
                "waiting = self._by_key.get(entry.key) if entry.key is not None else None",
                "waiting = None",
            ),
            (
                "drain/assembler.py",
                "                del self._by_key[entry.key]\n"
                "                self._keys_in_flight.add(entry.key)",
                "                self._by_key.pop(entry.key, None)\n"
                "                self._keys_in_flight.add(entry.key)",
            ),
        ],
    ),
    "bisect": (
        "a 422 dead-letters the whole request instead of splitting it",
        [
            (
                "drain/writer.py",
                "return done(self._bisect(destination, entries, exc))",
                "return done(Outcome(rejected=[(e, exc) for e in entries], requests=1))",
            )
        ],
    ),
    "release": (
        "messages still held at the end are not released (ChangeMessageVisibility 0)",
        [
            (
                "drain/settler.py",
                "released += len(self.queue.release(chunk))",
                "released += len(chunk)",
            )
        ],
    ),
    "delete-early": (
        "messages are deleted when their request is sent, not when it is confirmed",
        [
            (
                "drain/loop.py",
                "outcome = self.writer.write(request, lambda: self.assembler.slot_taken(request))",
                "self.settler.delete([m for e in request.entries for m in e.messages])\n"
                "            outcome = self.writer.write("
                "request, lambda: self.assembler.slot_taken(request))",
            ),
            (
                "drain/settler.py",
                "self.delete([m for e in outcome.written for m in e.messages])",
                "pass",
            ),
        ],
    ),
    "no-retry": (
        "transient failures (5xx, lost responses) are not retried within the run",
        [
            (
                "drain/writer.py",
                "if attempt >= self.settings.max_attempts or out_of_time:",
                "if True:",
            )
        ],
    ),
    "hammer": (
        "after a 429 the limiter is not paused: requests go on at the paced rate",
        [
            (
                "drain/writer.py",
                "destination.limiter.pause_until(self.clock() + lockout)",
                "pass",
            )
        ],
    ),
    "short-visibility": (
        "receives do not hide messages for the rest of the run (1 s instead)",
        [
            (
                "drain/receiver.py",
                "visibility_seconds=self.deadline.visibility_seconds(),",
                "visibility_seconds=1,",
            )
        ],
    ),
    "concurrent-key": (
        "a merge key may be written by two requests at once",
        [
            (
                "drain/assembler.py",
                "or (entry.key is not None and entry.key in self._keys_in_flight)",
                "or False",
            )
        ],
    ),
    "no-dead-letter": (
        "poison is not sent to the DLQ (left for the queue's redrive policy)",
        [("drain/settler.py", "stored = self.queue.dead_letter(letters)", "stored = []")],
    ),
    "dlq-size": (
        "the DLQ copy's attributes are not fitted into SQS's 1 MiB",
        [
            (
                "sqs.py",
                'room = MAX_MESSAGE_BYTES - len(body.encode("utf-8"))',
                "room = 10 * MAX_MESSAGE_BYTES",
            )
        ],
    ),
    "mapper-crash": (
        "an exception other than MappingError from the mapper stops the run",
        [
            (
                "drain/receiver.py",
                "            except Exception as exc:\n                # One message must never stop the run",
                "            except ZeroDivisionError as exc:\n                # One message must never stop the run",
            )
        ],
    ),
    "unsendable-text": (
        "records are not checked for text that cannot be sent as UTF-8 (lone surrogates)",
        [("drain/receiver.py", "                check_sendable(record)\n", "")],
    ),
    "hidden-retry": (
        "the HTTP session retries on its own, like pyairtable's default urllib3 Retry "
        "(caught by test_a_lost_response_is_retried_by_the_poller_only_and_leaves_one_row)",
        [
            (
                "airtable.py",
                '    api.session.mount("https://", adapter)\n    return api\n',
                '    api.session.mount("https://", adapter)\n'
                "    from urllib3.util import Retry\n"
                "    api.session.mount('http://', HTTPAdapter(max_retries=Retry(total=5, "
                "backoff_factor=0.1, status_forcelist=(429,), allowed_methods=None)))\n"
                "    return api\n",
            )
        ],
    ),
    "fifo-bisect-order": (
        "a bisected FIFO request writes its second half after the first half failed "
        "(caught by tests/unit/test_delivery.py)",
        [
            (
                "drain/writer.py",
                "kept_back = [e for e in later if e.groups & failed_groups]",
                "kept_back = []",
            )
        ],
    ),
    "fifo-empty-receive": (
        "on FIFO, an empty receive while the run holds a group ends the receiving "
        "(caught by tests/unit/test_delivery.py and test_a_fifo_group_is_drained_in_order...)",
        [
            (
                "drain/receiver.py",
                "if self.settings.fifo and self._held_groups_may_settle(held_at_receive):",
                "if False:",
            )
        ],
    ),
    "deadline-reason": (
        "a run that released messages for lack of time says it stopped on an empty queue "
        "(caught by tests/unit/test_delivery.py)",
        [
            (
                "drain/writer.py",
                "return done(Outcome.failing(entries, SinkError(NO_TIME), out_of_time=True))",
                "return done(Outcome.failing(entries, SinkError(NO_TIME)))",
            )
        ],
    ),
    "dlq-any-failure": (
        "the receive-count rule dead-letters on any failure (429, config error, deadline) "
        "(caught by tests/unit/test_delivery.py and test_a_configuration_error_stops_...)",
        [("drain/settler.py", "and isinstance(exc, TransientSinkError)", "and True")],
    ),
    # -- routes and systemic failures: caught by tests/unit/test_drain_routes.py and
    #    tests/unit/test_drain_systemic.py (run with --tests tests/unit)
    "shared-in-flight": (
        "requests in flight are capped across all bases, so a locked-out base stalls the others",
        [
            (
                "drain/assembler.py",
                "self._in_flight.get(pacer, 0) >= self.settings.max_in_flight",
                "self.in_flight >= self.settings.max_in_flight",
            )
        ],
    ),
    "many-waiting": (
        "several requests wait for one pacer's slot (they are no longer filled as late as possible)",
        [("drain/assembler.py", "or pacer in self._waiting", "or False")],
    ),
    "fifo-across-routes": (
        "a FIFO group's later entry in one route overtakes its earlier entry in another",
        [
            (
                "drain/assembler.py",
                "skipped |= groups  # a later entry of its group must not overtake it",
                "pass",
            )
        ],
    ),
    "guard-not-asked": (
        "a refused request is never sent again after the guard fixed its cause",
        [
            (
                "drain/writer.py",
                "if not asked_guard and self.guard.on_refused(route, exc):",
                "if False:",
            )
        ],
    ),
    "type-drift-is-poison": (
        "a rejection of every record on one field is never judged systemic",
        [
            (
                "drain/writer.py",
                "error = _uniform_rejection(outcome, request.entries)",
                "error = None",
            )
        ],
    ),
    "broken-route-buffers": (
        "messages received for a broken route are buffered instead of set aside for release",
        [("drain/receiver.py", "if state.closed(record.route):", "if False:")],
    ),
    "reason-repeats-type": (
        "a dead letter's reason starts with its error type again",
        [
            (
                "drain/settler.py",
                "    return DeadLetter(message, str(error), error_type)",
                '    return DeadLetter(message, f"{error_type}: {error}", error_type)',
            )
        ],
    ),
}


def mutant(name: str, workdir: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    shutil.copytree(ROOT / "src" / "poller", target / "poller")
    for file, old, new in MUTATIONS[name][1]:
        path = target / "poller" / file
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{name}: {old!r} found {text.count(old)} times in {file}")
        path.write_text(text.replace(old, new))
    return target


CAMPAIGN = ["tests/faults/test_fault_campaign.py"]


def run(name: str, workdir: Path, tests: list[str]) -> tuple[str, str, float]:
    path = mutant(name, workdir)
    env = {**os.environ, "PYTHONPATH": f"{path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *tests,
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if done.returncode == 0:
        return "SURVIVED", "the campaign passed", elapsed
    caught = re.findall(r"^\s*#\s*(A\d+[^\n]*)", _failing_source(done.stdout), re.MULTILINE)
    errors = [ln for ln in done.stdout.splitlines() if ln.startswith("E ")][:2]
    failed = [ln.split(" ")[1] for ln in done.stdout.splitlines() if ln.startswith("FAILED ")]
    where = caught[-1] if caught else (failed[0] if failed else "?")
    return "KILLED", f"{where} | {' / '.join(e[2:].strip()[:160] for e in errors)}", elapsed


def _failing_source(output: str) -> str:
    """The traceback's source lines up to the failing one (to find the last A-comment)."""
    return output.rsplit(">   ", 1)[0]


def main(argv: list[str]) -> int:
    tests = CAMPAIGN
    if argv[:1] == ["--tests"]:
        split = next((i for i, a in enumerate(argv) if a in MUTATIONS), len(argv))
        tests, argv = argv[1:split], argv[split:]
    names = argv or list(MUTATIONS)
    assert (ROOT / "src" / "poller" / "__init__.py").exists(), "run from the repository"
    print(f"mutating a copy of {ROOT / 'src/poller'}; the working tree is not touched")
    print(f"tests: {' '.join(tests)}")
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        for name in names:
            verdict, detail, elapsed = run(name, Path(tmp), tests)
            print(f"{name:18} {verdict:8} {elapsed:5.0f}s  {MUTATIONS[name][0]}\n    {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
