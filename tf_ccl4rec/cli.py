"""`ccl4rec`: the one command-line entry point.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``
(``args.command`` tells a module that serves two subcommands which one ran); this file only routes. Modules are imported lazily so ``ccl4rec --help`` does not load TensorFlow.
A subcommand whose module does not exist yet says so and exits non-zero.
"""

import argparse
import importlib
import sys

from tf_ccl4rec._env import ensure_legacy_keras, quiet_import_warnings

# name -> (module implementing it, one-line help, issue that builds it)
SUBCOMMANDS = {
    "data": ("tf_ccl4rec.data.cli", "generate synthetic logs or import real datasets", 4),
    "pipeline": ("pipeline.cli", "run the TFX pipeline (examples -> ... -> Pusher)", 5),
    "serve": ("serving.server", "serve pushed SavedModels over the TF Serving gRPC API", 6),
    "predict": ("serving.client_cli", "score candidate videos for a user over gRPC", 6),
    "recommend": ("serving.client_cli", "top-k videos for a user over gRPC", 6),
    "report": ("tf_ccl4rec.report", "HTML report from the Evaluator's output", 7),
    "experiment": ("tf_ccl4rec.experiments.cli", "the paper's studies on our data", 7),
    "bench": ("tf_ccl4rec.bench.cli", "training / inference / serving benchmarks", 8),
}


def _load(name):
    module_name = SUBCOMMANDS[name][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            return None  # not built yet
        raise


def build_parser(load=None):
    parser = argparse.ArgumentParser(
        prog="ccl4rec", description="CCL4Rec micro-video recommender: data, TFX pipeline, serving."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text, issue) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        module = _load(name) if name == load else None
        if module is not None:
            module.add_arguments(p)
        p.set_defaults(_command=name, _issue=issue)
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
    module = _load(args.command)
    if module is None:
        print(
            f"ccl4rec {args.command}: not built yet (tracked in issue #{args._issue}); "
            "nothing was run.",
            file=sys.stderr,
        )
        return 2
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
