"""Serving runtime: TF Serving layout and config, gRPC server and client."""

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()
