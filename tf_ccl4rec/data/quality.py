"""Data-quality counters and the JSON report: nothing is dropped without being counted.

Two ledgers, each reconciling exactly:

* interactions: ``input_rows == kept_rows + sum(bad_rows.values())``
* video_features: ``input_rows == kept_rows + sum(bad_rows.values())``

The same counts are Beam metric counters (namespace `METRICS_NAMESPACE`, counter names
``<ledger>.<kind>``) so a runner's UI shows them while the job runs.
"""

import json

from tf_ccl4rec.data import raw_log

METRICS_NAMESPACE = "ccl4rec_data"
REPORT_FILE = "data_quality.json"
INTERACTIONS = "interactions"
VIDEO_FEATURES = "video_features"
LEDGER_KINDS = {
    INTERACTIONS: raw_log.INTERACTION_KINDS,
    VIDEO_FEATURES: raw_log.FEATURE_KINDS,
}


def counter_name(ledger: str, kind: str) -> str:
    """The Beam counter name of one count, e.g. ``interactions.duplicate_row``."""
    return f"{ledger}.{kind}"


def build_report(counts: dict[str, int], options: dict | None = None) -> dict:
    """Assembles the data-quality report from flat counts.

    Args:
      counts: counter_name -> count; ``<ledger>.input_rows`` and ``<ledger>.kept_rows`` plus one
        entry per bad kind that occurred (missing kinds count 0), and ``examples.<split>``.
      options: the builder options, copied into the report for provenance.

    Returns:
      The report dict; ``reconciles`` is True for a ledger whose counts add up.
    """
    report: dict = {}
    for ledger, kinds in LEDGER_KINDS.items():
        bad = {k: int(counts.get(counter_name(ledger, k), 0)) for k in kinds}
        unexpected = {
            k.split(".", 1)[1]: v
            for k, v in counts.items()
            if k.startswith(ledger + ".")
            and k.split(".", 1)[1] not in (*kinds, "input_rows", "kept_rows")
        }
        bad.update(unexpected)
        inp = int(counts.get(counter_name(ledger, "input_rows"), 0))
        kept = int(counts.get(counter_name(ledger, "kept_rows"), 0))
        report[ledger] = {
            "input_rows": inp,
            "kept_rows": kept,
            "bad_rows": bad,
            "reconciles": inp == kept + sum(bad.values()),
        }
    report["examples"] = {
        k.split(".", 1)[1]: int(v) for k, v in sorted(counts.items()) if k.startswith("examples.")
    }
    if options is not None:
        report["options"] = dict(options)
    return report


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True)


def check_reconciles(report: dict) -> None:
    """Raises AssertionError naming the ledger whose counts do not add up."""
    for ledger in LEDGER_KINDS:
        part = report[ledger]
        if not part["reconciles"]:
            raise AssertionError(f"data-quality ledger {ledger!r} does not reconcile: {part}")


class EmptyDataError(ValueError):
    """The builder kept nothing to train on; the message says what came in and why."""


def _bad_text(part: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in part["bad_rows"].items() if v) or "none"


def check_not_empty(report: dict, data_root: str = "the raw log") -> None:
    """Raises EmptyDataError when the build produced no training example.

    Args:
      report: the data-quality report.
      data_root: named in the message.
    """
    inter = report[INTERACTIONS]
    n_train = report["examples"].get(raw_log.TRAIN, 0)
    if n_train:
        return
    if inter["input_rows"] == 0:
        why = "it has no data rows (only a header?)"
    elif inter["kept_rows"] == 0:
        why = f"none was kept; bad rows: {_bad_text(inter)}"
        feats = report[VIDEO_FEATURES]
        if inter["bad_rows"].get(raw_log.UNKNOWN_VIDEO) and feats["input_rows"]:
            why += (
                f" (the feature table has {feats['input_rows']} rows, "
                f"{feats['kept_rows']} usable; bad: {_bad_text(feats)})"
            )
    else:
        why = (
            f"{inter['kept_rows']} were kept but every example is in split "
            f"{raw_log.EVAL!r} (examples: {report['examples']})"
        )
    raise EmptyDataError(
        f"no training examples from {data_root}: {inter['input_rows']} input rows; {why}"
    )


def summary(report: dict) -> str:
    """One human-readable paragraph of the report (for CLI output)."""
    lines = []
    for ledger in LEDGER_KINDS:
        part = report[ledger]
        lines.append(
            f"{ledger}: {part['input_rows']} in, {part['kept_rows']} kept; bad: {_bad_text(part)}"
            + ("" if part["reconciles"] else "  (DOES NOT RECONCILE)")
        )
    lines.append("examples: " + ", ".join(f"{k}={v}" for k, v in report["examples"].items()))
    return "\n".join(lines)
