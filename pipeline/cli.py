"""`ccl4rec pipeline run|compile-kubeflow`: the main job from the command line."""

import argparse
import json
import sys
import time

from pipeline.configs import RUNNERS, PipelineConfig
from tf_ccl4rec import beam_runner
from tf_ccl4rec.config import PRESETS
from tf_ccl4rec.model_registry import MODEL_TYPES
from tf_ccl4rec.training_settings import DISTRIBUTIONS

# `ccl4rec pipeline run` exit codes besides 0 (pushed, or this model is already serving).
EXIT_NOT_BLESSED = 3
EXIT_ROOT_IN_USE = 4  # another run holds the pipeline root; nothing ran
EXIT_INVALID_SETTING = 2  # as argparse's usage errors; nothing ran


def _key_value(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value  # a bare string such as strategy=random


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pipeline_command", metavar="{run,compile-kubeflow}")
    sub.required = True
    for name, help_text in (
        ("run", "run the whole pipeline locally (LocalDagRunner + Beam)"),
        ("compile-kubeflow", "write a Kubeflow V2 / Vertex pipeline spec (no cluster needed)"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--data", required=True, help="raw-log directory (README: Raw-log layout)")
        p.add_argument("--root", required=True, help="pipeline root (artifacts, MLMD, logs)")
        p.add_argument("--serving-base", default="", help="TF Serving base (default ROOT/serving)")
        beam_runner.add_arguments(p, RUNNERS)
        p.add_argument(
            "--beam-arg", action="append", default=[], help="extra Beam flag, repeatable"
        )
        p.add_argument(
            "--direct-mode",
            default="in_memory",
            choices=("in_memory", "multi_processing", "multi_threading"),
        )
        p.add_argument("--direct-workers", type=int, default=1)
        p.add_argument("--max-history", type=int, default=None)
        p.add_argument("--static-history", action="store_true")
        p.add_argument("--eval-fraction", type=float, default=None)
        p.add_argument("--strict", action="store_true", help="bad input rows are fatal")
        p.add_argument(
            "--preset",
            choices=tuple(PRESETS),
            default=None,
            help="model settings: 'default' (measured best) or 'paper' (§4.1 literally)",
        )
        p.add_argument(
            "--epochs",
            type=int,
            default=None,
            help="most passes over the training rows (early stopping may end sooner; default 20)",
        )
        p.add_argument(
            "--train-steps",
            type=int,
            default=None,
            help="override: this many optimizer steps in total instead of whole epochs",
        )
        p.add_argument(
            "--validation-fraction",
            type=float,
            default=None,
            help="share of each user's latest training exposures held out for early stopping",
        )
        p.add_argument(
            "--patience",
            type=int,
            default=None,
            help="epochs without a better validation AUC before training stops (default 2)",
        )
        p.add_argument(
            "--no-refit",
            dest="refit",
            action="store_false",
            default=None,
            help="export the early-stopped model instead of retraining it on every training row",
        )
        p.add_argument(
            "--tune",
            action="store_true",
            help="run the TFX Tuner (KerasTuner random search) first; the Trainer takes its best",
        )
        p.add_argument("--tune-trials", type=int, default=None, help="trials of --tune (default 4)")
        p.add_argument("--rows-per-user", type=int, default=None, help="rows of a user per batch")
        p.add_argument(
            "--distribution",
            choices=DISTRIBUTIONS,
            default=None,
            help="Trainer strategy: auto = MultiWorkerMirrored when TF_CONFIG names several "
            "workers, else Mirrored over GPUs, else one device (docs/scaling.md)",
        )
        p.add_argument(
            "--top-k", type=int, action="append", default=None, help="K of P/R/F1@K, repeatable"
        )
        p.add_argument("--ranking-protocol", choices=("alpine", "thacil"), default=None)
        p.add_argument("--auc-floor", type=float, default=None)
        p.add_argument("--max-auc-drop", type=float, default=None)
        p.add_argument(
            "--min-gain-over-count",
            type=float,
            default=None,
            help="least AUC gain over the user + video click-rate count of the same run (0.001)",
        )
        p.add_argument(
            "--model",
            type=_key_value,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="CCL4RecConfig override, e.g. --model embedding_dim=32 --model strategy=random",
        )
        p.add_argument(
            "--transform",
            type=_key_value,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="Transform setting, e.g. --transform frequency_threshold=2",
        )
        p.add_argument(
            "--model-type",
            default="ccl4rec",
            choices=MODEL_TYPES,
            help="CCL4Rec or one of the baselines, trained and served the same way",
        )
        p.add_argument(
            "--vertex-training",
            type=_key_value,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="run the Trainer as a Vertex AI Training job: project=P image=I [region=R "
            "workers=N machine_type=M accelerator_type=T accelerator_count=C] (docs/scaling.md)",
        )
        p.add_argument("--no-cache", action="store_true", help="rerun every component")
        if name == "compile-kubeflow":
            p.add_argument("--output", required=True, help="pipeline spec JSON to write")
            p.add_argument("--image", default=None, help="container image with this package")


def config_from_args(args) -> PipelineConfig:
    if args.tune_trials is not None and not args.tune:
        raise ValueError("--tune-trials needs --tune")
    optional = {
        "tune_trials": args.tune_trials,
        "serving_base": args.serving_base,
        "max_history": args.max_history,
        "eval_fraction": args.eval_fraction,
        "preset": args.preset,
        "train_steps": args.train_steps,
        "max_epochs": args.epochs,
        "validation_fraction": args.validation_fraction,
        "early_stopping_patience": args.patience,
        "refit": args.refit,
        "rows_per_user": args.rows_per_user,
        "distribution": args.distribution,
        "top_k": args.top_k,
        "ranking_protocol": args.ranking_protocol,
        "auc_floor": args.auc_floor,
        "max_auc_drop": args.max_auc_drop,
        "min_gain_over_count": args.min_gain_over_count,
    }
    return PipelineConfig(
        data_root=args.data,
        pipeline_root=args.root,
        static_history=args.static_history,
        strict=args.strict,
        runner=args.runner,
        beam_args=args.beam_arg,
        job_endpoint=args.job_endpoint,
        worker_pool=args.worker_pool,
        direct_mode=args.direct_mode,
        direct_workers=args.direct_workers,
        model=dict(args.model),
        model_type=args.model_type,
        transform=dict(args.transform),
        enable_cache=not args.no_cache,
        tune=args.tune,
        vertex_training=dict(args.vertex_training),
        **{k: v for k, v in optional.items() if v not in (None, "")},
    )


def run(args) -> int:
    try:
        config = config_from_args(args)
    except ValueError as err:  # a bad flag or --model/--transform setting: nothing ran
        print(f"pipeline: invalid setting: {err}", file=sys.stderr, flush=True)
        return EXIT_INVALID_SETTING
    if args.pipeline_command == "compile-kubeflow":
        from pipeline.kubeflow_v2_runner import DEFAULT_IMAGE, compile_pipeline

        path = compile_pipeline(config, args.output, args.image or DEFAULT_IMAGE)
        print(f"wrote Kubeflow V2 pipeline spec: {path}")
        return 0

    from pipeline import local_runner
    from pipeline.root_lock import PipelineRootLocked

    print(f"pipeline: data {config.data_root} -> root {config.pipeline_root}", flush=True)
    print(f"pipeline: Beam {' '.join(config.beam_pipeline_args())}", flush=True)
    start = time.time()
    try:
        summary = local_runner.run(config)
    except PipelineRootLocked as err:  # nothing ran: no traceback to read
        print(f"pipeline: REFUSED: {err}", file=sys.stderr, flush=True)
        return EXIT_ROOT_IN_USE
    except Exception as err:  # one readable line on top of the traceback in the log
        print(f"pipeline: FAILED: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        raise
    print(f"pipeline: finished in {time.time() - start:.0f} s", flush=True)
    for line in summary.lines():
        print(f"  {line}", flush=True)
    return 0 if summary.pushed or summary.already_serving else EXIT_NOT_BLESSED
