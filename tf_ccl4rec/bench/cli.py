"""`ccl4rec bench {serve,train,infer,pipeline,multiworker}`: benchmarks that print figures (never tests)."""

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tf_ccl4rec.bench import multi_worker, pipeline, serve, speed

    sub = parser.add_subparsers(
        dest="bench_command", metavar="{serve,train,infer,pipeline,multiworker}"
    )
    sub.required = True
    serve.add_arguments(
        sub.add_parser("serve", help="gRPC latency/QPS at several concurrencies, and a soak")
    )
    speed.add_arguments(
        sub.add_parser("train", help="training speed vs the FLOP bound and the baselines"),
        "train",
    )
    speed.add_arguments(
        sub.add_parser("infer", help="inference latency per batch vs the baselines"), "infer"
    )
    pipeline.add_arguments(
        sub.add_parser("pipeline", help="example builder + Transform on 1x/2x/4x generated data")
    )
    multi_worker.add_arguments(
        sub.add_parser(
            "multiworker", help="Trainer examples/s: 1 process vs N workers (TF_CONFIG, localhost)"
        )
    )


def run(args) -> int:
    if args.bench_command == "serve":
        from tf_ccl4rec.bench import serve

        return serve.run(args)
    if args.bench_command == "pipeline":
        from tf_ccl4rec.bench import pipeline

        return pipeline.run(args)
    if args.bench_command == "multiworker":
        from tf_ccl4rec.bench import multi_worker

        return multi_worker.run(args)
    from tf_ccl4rec.bench import speed

    return speed.run(args, args.bench_command)
