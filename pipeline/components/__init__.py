"""Custom TFX components of the CCL4Rec pipeline."""

from pipeline.components.example_gen import CCL4RecExampleGen

__all__ = ["CCL4RecExampleGen"]
