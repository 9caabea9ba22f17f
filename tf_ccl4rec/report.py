"""`ccl4rec report`: one self-contained HTML page from a pipeline's latest evaluation.

Reads the newest ModelEvaluation in the pipeline's MLMD store, the Trainer run that produced the
evaluated model and the blessing of the same Evaluator execution. Metrics, plots and the validation
result come from TFMA's loaders; training curves from the Trainer's TensorBoard event files. Plots
are PNGs embedded as base64, so the page needs no network and no other file.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import os
import sys

from tf_ccl4rec import features as F
from tf_ccl4rec import mlmd
from tf_ccl4rec.metrics import ranking

SLICE_FEATURES = (F.USER_ACTIVITY_BUCKET, F.VIDEO_POPULARITY_BUCKET)
BASE_METRICS = (
    "auc",
    "example_count",
    "calibration",
    "mean_label",
    "mean_prediction",
    "binary_crossentropy",
)
EVALUATOR_ID = "Evaluator"  # the pipeline's full evaluation (pipeline/pipeline.py)
RANKING_METRICS = ("precision_at_{k}", "recall_at_{k}", "f1_at_{k}", "ranked_users_at_{k}")
# Keras/TensorBoard scalars that are not loss terms but still worth a curve.
EXTRA_CURVES = ("auc",)


# --- locating the artifacts (MLMD) -------------------------------------------------------------
def locate(pipeline_root: str) -> dict:
    """URIs of the newest evaluation and what belongs to it, read from MLMD.

    Args:
      pipeline_root: The pipeline root holding metadata.sqlite.

    Returns:
      Dict with "evaluation" (URI), "model" / "baseline_model" (URIs or None), "model_run"
      (Trainer TensorBoard dir or None), "blessed" (bool or None).
    """
    from ml_metadata.proto import metadata_store_pb2

    store = mlmd.open_store(pipeline_root)
    # The full evaluation (candidate vs the count); the other Evaluator only gates on AUC.
    evaluation = mlmd.latest_output(store, "ModelEvaluation", EVALUATOR_ID)
    if evaluation is None:  # a store without node contexts (hand-made or older): the newest
        evaluation = mlmd.latest_artifact(store, "ModelEvaluation")
    if evaluation is None:
        store_path = os.path.abspath(os.path.join(pipeline_root, mlmd.METADATA_FILE))
        raise FileNotFoundError(f"no Evaluator output recorded in the MLMD store {store_path}")
    found = {
        "evaluation": evaluation.uri,
        "model": None,
        "baseline_model": None,
        "model_run": None,
        "blessed": None,
    }

    def execution_of(artifact_id, event_type):
        events = store.get_events_by_artifact_ids([artifact_id])
        ids = [e.execution_id for e in events if e.type == event_type]
        return max(ids) if ids else None

    def artifacts_of(execution_id, event_type):
        """{input/output key: [artifacts]} of one execution."""
        by_key = {}
        events = [
            e for e in store.get_events_by_execution_ids([execution_id]) if e.type == event_type
        ]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for e in events:
            # One event can name several keys (the same model as "model" and "baseline_model").
            for step in e.path.steps:
                if step.HasField("key"):
                    by_key.setdefault(step.key, []).append(artifacts[e.artifact_id])
        return by_key

    evaluator = execution_of(evaluation.id, metadata_store_pb2.Event.OUTPUT)
    if evaluator is not None:
        inputs = artifacts_of(evaluator, metadata_store_pb2.Event.INPUT)
        outputs = artifacts_of(evaluator, metadata_store_pb2.Event.OUTPUT)
        model = (inputs.get("model") or [None])[0]
        baseline = (inputs.get("baseline_model") or [None])[0]
        blessing = (outputs.get("blessing") or [None])[0]
        found["model"] = model.uri if model else None
        found["baseline_model"] = baseline.uri if baseline else None
        if blessing is not None:
            found["blessed"] = bool(mlmd.custom_property(blessing, "blessed"))
        trainer = execution_of(model.id, metadata_store_pb2.Event.OUTPUT) if model else None
        if trainer is not None:
            runs = artifacts_of(trainer, metadata_store_pb2.Event.OUTPUT).get("model_run") or []
            found["model_run"] = runs[0].uri if runs else None
    if found["model_run"] is None:  # no lineage recorded: the newest Trainer run
        runs = store.get_artifacts_by_type("ModelRun")
        found["model_run"] = max(runs, key=lambda a: a.id).uri if runs else None
    for key in ("evaluation", "model", "baseline_model", "model_run"):
        if found[key]:
            found[key] = mlmd.artifact_path(found[key], pipeline_root)
    return found


# --- reading TFMA and TensorBoard output -------------------------------------------------------
def _model_names(eval_config):
    """(candidate name, baseline name or None) from the eval config stored with the result."""
    candidate, baseline = None, None
    for spec in eval_config.model_specs:
        if spec.is_baseline:
            baseline = spec.name
        elif candidate is None:
            candidate = spec.name
    return candidate, baseline


def _values(metrics_dict) -> dict:
    """{metric name: float} from TFMA's dict form (single output, no sub key)."""
    values = metrics_dict.get("", {}).get("", {})
    out = {}
    for name, value in values.items():
        if isinstance(value, dict) and "doubleValue" in value:
            out[name] = float(value["doubleValue"])
    return out


def _slice_name(slice_key) -> str:
    if not slice_key:
        return "Overall"
    return ", ".join(f"{k} = {v.decode() if isinstance(v, bytes) else v}" for k, v in slice_key)


def _slice_order(slice_key):
    if not slice_key:
        return (0, "", "")
    feature, value = slice_key[0]
    rank = SLICE_FEATURES.index(feature) + 1 if feature in SLICE_FEATURES else len(SLICE_FEATURES)
    return (rank, feature, str(value))


def ranking_settings(eval_config) -> tuple[list[int], str]:
    """The K values and the protocol of our UserPrecisionRecallAtK metrics in the eval config."""
    ks, protocols = [], set()
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name != "UserPrecisionRecallAtK":
                continue
            options = json.loads("{" + metric.config + "}") if metric.config else {}
            ks.append(int(options.get("top_k", 50)))
            protocols.add(options.get("protocol", "alpine"))
    if len(protocols) > 1:
        raise ValueError(f"ranking metrics mix protocols {sorted(protocols)}")
    return sorted(set(ks)), (protocols.pop() if protocols else "alpine")


def _spec_name(spec) -> str:
    """A SlicingSpec as text: "Overall" for the empty spec."""
    parts = list(spec.feature_keys) + [f"{k} = {v}" for k, v in sorted(spec.feature_values.items())]
    return ", ".join(parts) or "Overall"


def _threshold_row(name: str, slices: str, threshold) -> dict:
    from google.protobuf import json_format

    row = {"metric": name, "slices": slices, "value": "-", "change": "-"}
    if threshold.HasField("value_threshold"):
        bounds = threshold.value_threshold
        parts = []
        if bounds.HasField("lower_bound"):
            parts.append(f">= {bounds.lower_bound.value:g}")
        if bounds.HasField("upper_bound"):
            parts.append(f"<= {bounds.upper_bound.value:g}")
        row["value"] = " and ".join(parts) or "-"
    if threshold.HasField("change_threshold"):
        change = json_format.MessageToDict(threshold.change_threshold)
        row["change"] = ", ".join(f"{k}: {v}" for k, v in sorted(change.items()))
    return row


def thresholds(eval_config) -> list[dict]:
    """Every metric threshold of the eval config (plain and per-slice), as readable rows."""
    rows = []
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.HasField("threshold"):
                rows.append(_threshold_row(metric.class_name, "every slice", metric.threshold))
            for per_slice in metric.per_slice_thresholds:
                slices = "; ".join(_spec_name(s) for s in per_slice.slicing_specs)
                rows.append(_threshold_row(metric.class_name, slices, per_slice.threshold))
    return rows


def load_evaluation(evaluation_uri: str) -> dict:
    """Metrics per slice (candidate, baseline, diffs), plots, validation and config via TFMA.

    Returns:
      Dict with "config", "candidate"/"baseline" (names), "metrics" {slice key: {name: value}},
      "baseline_metrics" (same or {}), "plots" {slice key: plot dict}, "baseline_plots",
      "validation" (ValidationResult proto or None).
    """
    import tensorflow as tf
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.writers import eval_config_writer

    if not tf.io.gfile.isdir(evaluation_uri):
        raise FileNotFoundError(f"evaluation not found: no directory {evaluation_uri}")
    # TFMA's reader of eval_config.json (load_eval_result needs the model name first).
    config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    if config is None:  # TFMA returns None when the file is missing
        raise FileNotFoundError(f"evaluation incomplete: no eval_config.json in {evaluation_uri}")
    candidate, baseline = _model_names(config)
    # Single-model results carry the name "" and are loaded without a name.
    result = tfma.load_eval_result(evaluation_uri, model_name=candidate or None)
    loaded = {
        "config": config,
        "candidate": candidate,
        "baseline": baseline,
        "metrics": {k: _values(m) for k, m in result.slicing_metrics},
        "plots": {k: p.get("", {}).get("", {}) for k, p in (result.plots or [])},
        "baseline_metrics": {},
        "baseline_plots": {},
    }
    if baseline:
        base = tfma.load_eval_result(evaluation_uri, model_name=baseline)
        loaded["baseline_metrics"] = {k: _values(m) for k, m in base.slicing_metrics}
        loaded["baseline_plots"] = {k: p.get("", {}).get("", {}) for k, p in (base.plots or [])}
    try:
        loaded["validation"] = tfma.load_validation_result(evaluation_uri)
    except (FileNotFoundError, OSError, IndexError):
        loaded["validation"] = None  # evaluations without thresholds write no validation file
    return loaded


def training_curves(model_run_dir: str | None) -> dict:
    """{tag: {"train"|"validation": [(step, value)]}} from the Keras TensorBoard event files.

    Returns {} when there is no model-run directory or no event file in it.
    """
    import tensorflow as tf

    curves = {}
    if not model_run_dir or not tf.io.gfile.isdir(model_run_dir):
        return curves
    for split in ("train", "validation"):
        for path in sorted(tf.io.gfile.glob(os.path.join(model_run_dir, split, "events.out.*"))):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if not value.tag.startswith("epoch_"):
                        continue
                    kind = value.WhichOneof("value")
                    if kind == "simple_value":
                        number = value.simple_value
                    elif kind == "tensor" and value.metadata.plugin_data.plugin_name == "scalars":
                        number = float(tf.make_ndarray(value.tensor))
                    else:
                        continue
                    tag = value.tag[len("epoch_") :]
                    curves.setdefault(tag, {}).setdefault(split, []).append((event.step, number))
    return curves


# --- figures -----------------------------------------------------------------------------------
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _calibration_buckets(plot: dict):
    """(lower threshold, count, label sum, prediction sum) of TFMA's non-empty calibration buckets."""
    out = []
    for bucket in plot.get("calibrationHistogramBuckets", {}).get("buckets", []):
        count = float(bucket.get("numWeightedExamples", 0.0))
        if count > 0:
            lower = bucket.get("lowerThresholdInclusive", 0.0)
            lower = 0.0 if lower in ("-Infinity", "NaN") else float(lower)
            out.append(
                (
                    lower,
                    count,
                    float(bucket.get("totalWeightedLabel", 0.0)),
                    float(bucket.get("totalWeightedRefinedPrediction", 0.0)),
                )
            )
    return sorted(out)


def _calibration_bins(plot: dict, bins: int = 10):
    """TFMA's fine CalibrationPlot buckets merged into about `bins` equal-count bins.

    Equal-count (not equal-width) bins, because a model's predictions usually crowd into a narrow
    range, where equal-width bins would leave one full bin and a few near-empty ones.

    Returns:
      (mean prediction, observed click rate, example count) lists, one entry per bin.
    """
    buckets = _calibration_buckets(plot)
    total = sum(b[1] for b in buckets)
    pred, label, count = [], [], []
    acc = [0.0, 0.0, 0.0]
    for _, n, labels, preds in buckets:
        acc = [acc[0] + n, acc[1] + labels, acc[2] + preds]
        if acc[0] >= total / bins:
            count.append(acc[0])
            label.append(acc[1] / acc[0])
            pred.append(acc[2] / acc[0])
            acc = [0.0, 0.0, 0.0]
    if acc[0] > 0:
        count.append(acc[0])
        label.append(acc[1] / acc[0])
        pred.append(acc[2] / acc[0])
    return pred, label, count


def calibration_figure(plots: dict, baseline_plots: dict) -> str | None:
    """Reliability diagram of the overall slice (candidate, and baseline when there is one)."""
    import matplotlib.pyplot as plt

    if () not in plots or not _calibration_buckets(plots[()]):
        return None
    fig, (ax, hist) = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.2, 1]})
    # The baseline is drawn hollow and dashed, so it stays visible when the two coincide.
    series = [("candidate", plots[()], dict(color="tab:blue", marker="o"), "stepfilled")]
    if () in baseline_plots and _calibration_buckets(baseline_plots[()]):
        style = dict(color="tab:orange", marker="s", linestyle="--", markerfacecolor="none")
        series.append(("baseline", baseline_plots[()], style, "step"))
    values = []
    for name, plot, style, histtype in series:
        pred, label, count = _calibration_bins(plot)
        values += pred + label
        ax.plot(pred, label, label=f"{name} ({len(pred)} bins)", **style)
        buckets = _calibration_buckets(plot)
        hist.hist(
            [b[3] / b[1] for b in buckets],
            weights=[b[1] for b in buckets],
            bins=40,
            color=style["color"],
            alpha=0.6 if histtype == "stepfilled" else 1.0,
            histtype=histtype,
            linewidth=1.5,
            label=name,
        )
    # Zoomed to the data (predictions of a small model can span a narrow range).
    low = max(0.0, min(values) - 0.05)
    high = min(1.0, max(values) + 0.05)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("mean predicted CTR in bin")
    ax.set_ylabel("observed click rate in bin")
    ax.set_title("Calibration, overall slice (equal-count bins)", fontsize=11)
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    hist.set_xlabel("predicted CTR")
    hist.set_ylabel("examples")
    hist.set_title("Distribution of predictions", fontsize=11)
    hist.legend(fontsize=9)
    fig.tight_layout()
    return _png(fig)


def slice_bars_figure(metrics: dict, baseline_metrics: dict, names: list[str]) -> str | None:
    """One bar chart per (slice feature, metric): the metric in each bucket."""
    import matplotlib.pyplot as plt

    features = [f for f in SLICE_FEATURES if any(k and k[0][0] == f for k in metrics)]
    if not features:
        return None
    fig, axes = plt.subplots(
        len(features), len(names), figsize=(4.2 * len(names), 3.3 * len(features)), squeeze=False
    )
    for row, feature in enumerate(features):
        keys = sorted((k for k in metrics if k and k[0][0] == feature), key=_slice_order)
        labels = [str(k[0][1].decode() if isinstance(k[0][1], bytes) else k[0][1]) for k in keys]
        for col, name in enumerate(names):
            ax = axes[row][col]
            series = [("candidate", metrics, "tab:blue")]
            if baseline_metrics:
                series.append(("baseline", baseline_metrics, "tab:orange"))
            width = 0.8 / len(series)
            top = 1e-9
            for i, (label, source, color) in enumerate(series):
                xs = [x - 0.4 + width * (i + 0.5) for x in range(len(keys))]
                values = [source.get(k, {}).get(name, float("nan")) for k in keys]
                bars = ax.bar(xs, values, width, label=label, color=color)
                ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
                top = max([top] + [v for v in values if v == v])
            ax.set_xticks(range(len(keys)))
            ax.set_xticklabels(labels, fontsize=9)
            ax.set_title(f"{name} by {feature}", fontsize=10)
            ax.set_ylim(0, 1.15 * top)  # room for the value labels
            ax.grid(axis="y", alpha=0.3)
    handles, legend_labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="upper center", ncol=len(handles), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _png(fig)


def curves_figure(curves: dict) -> str | None:
    """One small chart per loss term (and AUC): train and validation value per epoch."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    tags = sorted(t for t in curves if t.endswith("loss") or t in EXTRA_CURVES)
    if not tags:
        return None
    cols = 4
    rows = (len(tags) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)
    for ax, tag in zip(axes.flat, tags, strict=False):
        for split, style in (("train", "-o"), ("validation", "--s")):
            points = curves[tag].get(split)
            # Augmented terms are not computed on validation batches: Keras logs 0 there.
            if points and any(v != 0 for _, v in points):
                steps, values = zip(*sorted(points), strict=True)
                ax.plot([s + 1 for s in steps], values, style, markersize=3, label=split)
        ax.set_title(tag, fontsize=10, pad=12)  # above a "1e-6" axis offset
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tags) :]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


# --- HTML --------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#0a7d28;font-weight:bold}.bad{color:#b00020;font-weight:bold}
.scroll{overflow-x:auto}.note{color:#555;font-size:13px}img{max-width:100%}
code{background:#f5f5f5;padding:1px 3px}table.text td,table.text th{text-align:left}
"""


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.4f}"
    return html.escape(str(value))


def _table(header, rows, text=False) -> str:
    """An HTML table; numbers are right-aligned unless `text` (all cells left-aligned)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    cls = ' class="text"' if text else ""
    return f'<div class="scroll"><table{cls}><tr>{head}</tr>{body}</table></div>'


def _img(data: str | None, alt: str) -> str:
    if data is None:
        return f'<p class="note">No data for: {html.escape(alt)}.</p>'
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _failed_threshold(threshold) -> str:
    """The threshold a failed metric missed, in the words of the thresholds table."""
    row = _threshold_row("", "", threshold)
    missed = []
    if row["value"] != "-":
        missed.append(f"needs {row['value']}")
    if row["change"] != "-":
        missed.append(f"change vs baseline needs {row['change']}")
    return "; ".join(missed) or "-"


def _validation_html(validation, config, blessed) -> str:
    from tensorflow_model_analysis.slicer import slicer_lib

    parts = []
    if blessed is not None:
        verdict = "BLESSED" if blessed else "NOT BLESSED"
        parts.append(
            f'<p>Model blessing: <span class="{"ok" if blessed else "bad"}">{verdict}</span></p>'
        )
    if validation is None:
        parts.append('<p class="note">No validation result was written for this evaluation.</p>')
    else:
        ok = validation.validation_ok
        parts.append(
            f'<p>TFMA validation_ok: <span class="{"ok" if ok else "bad"}">{ok}</span></p>'
        )
        failures = []
        for per_slice in validation.metric_validations_per_slice:
            slice_name = _slice_name(slicer_lib.deserialize_slice_key(per_slice.slice_key))
            for failure in per_slice.failures:
                key = failure.metric_key
                failures.append(
                    [
                        slice_name,
                        key.name + (" (diff)" if key.is_diff else ""),
                        failure.metric_value.double_value.value
                        if failure.metric_value.HasField("double_value")
                        else str(failure.metric_value),
                        failure.message.strip() or _failed_threshold(failure.metric_threshold),
                    ]
                )
        if failures:
            parts.append("<p>Failed thresholds:</p>")
            parts.append(_table(["slice", "metric", "value", "why"], failures, text=True))
        for detail in validation.validation_details.slicing_details:
            parts.append(f'<p class="note">Slices checked: {detail.num_matching_slices}</p>')
    rows = thresholds(config)
    if rows:
        parts.append("<p>Thresholds (from the eval config stored with the result):</p>")
        parts.append(
            _table(
                ["metric", "slices", "value threshold", "change threshold (vs baseline)"],
                [[r["metric"], r["slices"], r["value"], r["change"]] for r in rows],
                text=True,
            )
        )
    return "\n".join(parts)


def build_report(pipeline_root: str, out_path: str) -> str:
    """Writes the HTML report of the pipeline's latest evaluation.

    Args:
      pipeline_root: The pipeline root (with metadata.sqlite).
      out_path: Where to write the HTML page.

    Returns:
      out_path.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display; figures go to PNG bytes

    where = locate(pipeline_root)
    evaluation = load_evaluation(where["evaluation"])
    ks, protocol = ranking_settings(evaluation["config"])
    metric_names = list(BASE_METRICS) + [m.format(k=k) for k in ks for m in RANKING_METRICS]
    metrics, base_metrics = evaluation["metrics"], evaluation["baseline_metrics"]
    keys = sorted(metrics, key=_slice_order)
    if not keys:
        raise ValueError(f"the evaluation at {where['evaluation']} holds no metrics")

    # Metrics as rows and slices as columns: a dozen metrics fit a page's height, not its width.
    header = ["metric"] + [_slice_name(k) for k in keys]
    table_rows = [[n] + [metrics[k].get(n) for k in keys] for n in metric_names]

    sections = [
        "<h1>CCL4Rec evaluation report</h1>",
        _table(
            ["what", "where"],
            [
                ["pipeline root", os.path.abspath(pipeline_root)],
                ["evaluation (TFMA output)", where["evaluation"]],
                ["evaluated model", where["model"]],
                ["baseline model", where["baseline_model"] or "none (first blessing)"],
                ["Trainer logs", where["model_run"]],
                [
                    "generated",
                    datetime.datetime.now(datetime.timezone.utc).isoformat(" ", "seconds"),
                ],
            ],
            text=True,
        ),
        "<h2>Blessing and validation</h2>",
        _validation_html(evaluation["validation"], evaluation["config"], where["blessed"]),
        "<h2>Metrics per slice</h2>",
        f'<p class="note">P/R/F1@K (K = {", ".join(map(str, ks)) or "none"}) are per-user '
        f"metrics averaged over users, protocol <b>{html.escape(protocol)}</b>: "
        f"{html.escape(ranking.protocol_description(protocol))}</p>",
        _table(header, table_rows),
    ]

    sections.append("<h2>Comparison with the user + video count</h2>")
    if evaluation["baseline"] and base_metrics:
        rows = []
        for key in keys:
            for name in metric_names:
                cand = metrics[key].get(name)
                base = base_metrics.get(key, {}).get(name)
                diff = metrics[key].get(f"{name}_diff")
                if cand is None and base is None:
                    continue
                if key and name not in ("auc", *(f"precision_at_{k}" for k in ks)):
                    continue  # per bucket only the headline metrics, to keep the table short
                rows.append([_slice_name(key), name, cand, base, diff])
        sections.append(
            f'<p class="note">Candidate model "{html.escape(evaluation["candidate"])}" vs baseline '
            f'"{html.escape(evaluation["baseline"])}" (the user + video click-rate count trained '
            "in the same run on the same examples; a model is pushed only when it beats it and "
            "is no worse than the last blessed model); diff = candidate - baseline as computed "
            "by TFMA.</p>"
        )
        sections.append(_table(["slice", "metric", "candidate", "baseline", "diff"], rows))
    else:
        sections.append('<p class="note">This evaluation had no baseline model.</p>')

    curves = training_curves(where["model_run"])
    sections += [
        "<h2>Calibration</h2>",
        _img(
            calibration_figure(evaluation["plots"], evaluation["baseline_plots"]),
            "calibration plot",
        ),
        "<h2>Metrics per bucket</h2>",
        _img(
            slice_bars_figure(metrics, base_metrics, ["auc"] + [f"precision_at_{k}" for k in ks]),
            "per-slice bars",
        ),
        "<h2>Training curves (Trainer TensorBoard logs)</h2>",
        _img(curves_figure(curves), "training curves"),
    ]
    if curves:
        final = []
        for tag in sorted(curves):
            train = curves[tag].get("train") or []
            val = curves[tag].get("validation") or []
            final.append([tag, train[-1][1] if train else None, val[-1][1] if val else None])
        sections.append("<p>Last epoch:</p>")
        sections.append(_table(["scalar", "train", "validation"], final))

    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<title>CCL4Rec evaluation report</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return out_path


# --- CLI ---------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("--root", required=True, help="pipeline root (holds metadata.sqlite)")
    parser.add_argument("--out", default="report.html", help="HTML file to write")


def run(args) -> int:
    try:
        path = build_report(os.path.abspath(args.root), args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"report: {err}", file=sys.stderr)
        return 1
    print(f"report: wrote {path}")
    return 0
