"""Data: synthetic logs, importers, the raw-log layout, the Beam example builder, quality report.

Public entry points (see docs/data.md):

* `synth.generate` / `synth.synth` -- planted-noise generator.
* `importers.run_import` -- MicroVideo-1.7M, Kuaishou, generic CSV -> raw-log layout.
* `examples.BuildExamples` / `examples.WriteExamples` -- the Beam example builder.
* `load_video_features(data_dir)` -- the Trainer's video-feature table loader.
"""

from tf_ccl4rec.data.raw_log import load_video_features

__all__ = ["load_video_features"]
