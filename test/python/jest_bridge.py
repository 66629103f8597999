"""pytest plugin used by models.test.ts: writes one JSON line per test outcome so jest can report each Python test.

Loaded with `-p jest_bridge` (PYTHONPATH=test/python); the output file comes from JEST_BRIDGE_OUT.
"""
import json
import os

_outcomes = {}


def _record(nodeid, outcome, detail):
    previous = _outcomes.get(nodeid)
    # A failure in any phase (setup, call, teardown) decides; a skip in setup means the call never ran.
    if previous is None or previous["outcome"] == "passed" or outcome == "failed":
        _outcomes[nodeid] = {"nodeid": nodeid, "outcome": outcome, "detail": detail}


def _skip_reason(longrepr):
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report):
    if report.passed and report.when != "call":
        return
    if report.skipped:
        _record(report.nodeid, "skipped", _skip_reason(report.longrepr))
    elif report.failed:
        _record(report.nodeid, "failed", f"{report.when} failed:\n{report.longreprtext}")
    else:
        _record(report.nodeid, "passed", "")


def pytest_collectreport(report):
    if report.failed:
        _record(report.nodeid or "collection", "failed", f"collection failed:\n{report.longreprtext}")


def pytest_sessionfinish(session):
    with open(os.environ["JEST_BRIDGE_OUT"], "w", encoding="utf-8") as out:
        for outcome in _outcomes.values():
            out.write(json.dumps(outcome) + "\n")
