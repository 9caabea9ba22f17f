"""The CCL4Rec TFX pipeline: DAG definition, configs and one runner per orchestrator."""

from tf_ccl4rec._env import ensure_legacy_keras

ensure_legacy_keras()
