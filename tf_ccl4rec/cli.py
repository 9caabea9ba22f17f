"""`ccl4rec`: the one command-line entry point.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``
(``args.command`` tells a module that serves two subcommands which one ran); this file only routes.
Modules are imported lazily so ``ccl4rec --help`` does not load TensorFlow.
"""

import argparse
import importlib
import sys

from tf_ccl4rec._env import ensure_legacy_keras, quiet_import_warnings

# name -> (module implementing it, one-line help)
SUBCOMMANDS = {
    "data": ("tf_ccl4rec.data.cli", "generate synthetic logs or import real datasets"),
    "pipeline": ("pipeline.cli", "run the TFX pipeline (examples -> ... -> Pusher)"),
    "serve": ("serving.server", "serve pushed SavedModels over the TF Serving gRPC API"),
    "predict": ("serving.client_cli", "score candidate videos for a user over gRPC"),
    "recommend": ("serving.client_cli", "top-k videos for a user over gRPC"),
    "report": ("tf_ccl4rec.report", "HTML report from the Evaluator's output"),
    "experiment": ("tf_ccl4rec.experiments.cli", "the paper's studies on our data"),
    "bench": ("tf_ccl4rec.bench.cli", "training / inference / serving benchmarks"),
}


def _load(name):
    return importlib.import_module(SUBCOMMANDS[name][0])


def build_parser(load=None):
    parser = argparse.ArgumentParser(
        prog="ccl4rec", description="CCL4Rec micro-video recommender: data, TFX pipeline, serving."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == load:
            _load(name).add_arguments(p)
    return parser


def main(argv=None) -> int:
    ensure_legacy_keras()
    quiet_import_warnings()
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the chosen subcommand's module is imported (it may import TensorFlow).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(load=chosen if chosen in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(_load(args.command).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
