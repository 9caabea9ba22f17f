"""Benchmarks (not tests): training, inference and serving figures for the notes."""

import json
import os


def write_output(path: str, content) -> None:
    """Writes a benchmark's result (a dict -> JSON, a str as is), creating directories, and says so."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        if isinstance(content, str):
            f.write(content)
        else:
            json.dump(content, f, indent=2)
    print(f"wrote {path}")
