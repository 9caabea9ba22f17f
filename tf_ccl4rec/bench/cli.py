"""`ccl4rec bench {serve,train,infer,pipeline}`: benchmarks that print figures (never tests).

Only `serve` is built; the others belong to issue #8 and say so instead of printing anything.
"""

import argparse
import sys

NOT_BUILT = {
    "train": "training impressions/s vs the FLOP bound",
    "infer": "inference latency per batch of 32",
    "pipeline": "example builder + Transform scaling on 1x/2x/4x data",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tf_ccl4rec.bench import serve

    sub = parser.add_subparsers(dest="bench_command", metavar="{serve,train,infer,pipeline}")
    sub.required = True
    serve.add_arguments(
        sub.add_parser("serve", help="gRPC latency/QPS at several concurrencies, and a soak")
    )
    for name, help_text in NOT_BUILT.items():
        sub.add_parser(name, help=f"{help_text} (not built yet)")


def run(args) -> int:
    if args.bench_command == "serve":
        from tf_ccl4rec.bench import serve

        return serve.run(args)
    print(
        f"ccl4rec bench {args.bench_command}: not built yet (tracked in issue #8); nothing was run.",
        file=sys.stderr,
    )
    return 2
