"""``ccl4rec predict`` and ``ccl4rec recommend``: one request over gRPC, answer as JSON.

ccl4rec predict --server localhost:8500 --click-history a,b,c --candidates x,y
ccl4rec recommend --server localhost:8500 --click-history a,b,c --k 10
"""

from __future__ import annotations

import argparse
import json
import sys

PREDICT, RECOMMEND = "predict", "recommend"


def _ids(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()] if text else []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the flags of ``predict`` or ``recommend`` (told apart by the parser's prog name)."""
    command = parser.prog.split()[-1]
    parser.add_argument("--server", required=True, help="HOST:PORT of the gRPC server")
    parser.add_argument("--model-name", default="ccl4rec")
    parser.add_argument(
        "--click-history", default="", help="comma-separated video ids, oldest first"
    )
    parser.add_argument("--nonclick-history", default="", help="comma-separated video ids")
    if command != RECOMMEND:
        parser.add_argument("--candidates", default="", help="comma-separated video ids to score")
    if command != PREDICT:
        parser.add_argument("--k", type=int, default=10, help="number of videos to recommend")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--version", type=int, help="a specific model version (default latest)")
    group.add_argument("--version-label", help="a version label from models.config, e.g. stable")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call")


def run(args: argparse.Namespace) -> int:
    """Sends one request; prints the answer as JSON (exit 0) or the error (exit 1)."""
    from serving.client import ServingClient, ServingError

    command = getattr(args, "command", None) or (RECOMMEND if hasattr(args, "k") else PREDICT)
    click, nonclick = _ids(args.click_history), _ids(args.nonclick_history)
    try:
        with ServingClient(
            args.server,
            args.model_name,
            timeout=args.timeout,
            version=args.version,
            version_label=args.version_label,
        ) as client:
            if command == RECOMMEND:
                ids, scores = client.recommend([click], k=args.k, nonclick_histories=[nonclick])
                answer = {
                    "recommendations": [
                        {"video_id": v, "score": round(float(s), 6)}
                        for v, s in zip(ids[0], scores[0], strict=True)
                    ]
                }
            else:
                candidates = _ids(args.candidates)
                if not candidates:
                    print("ccl4rec predict: give --candidates", file=sys.stderr)
                    return 2
                probs = client.predict([click], [candidates], nonclick_histories=[nonclick])
                answer = {
                    "predictions": [
                        {"video_id": v, "probability": round(float(p), 6)}
                        for v, p in zip(candidates, probs[0], strict=True)
                    ]
                }
            answer = {"model_version": client.last_version, **answer}
    except (ServingError, ValueError) as err:
        print(f"ccl4rec {command}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0
