"""tf_ccl4rec: CCL4Rec (Contrast over Contrastive Learning) as a TFX recommender."""

from setuptools import find_packages, setup

setup(
    name="tf_ccl4rec",
    version="0.1.0",
    description=(
        "CCL4Rec micro-video recommender in TensorFlow/Keras, trained with TFX and served with "
        "TensorFlow Serving"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["tf_ccl4rec*", "pipeline*", "serving*"]),
    package_data={"": ["*.pbtxt", "*.config"]},
    include_package_data=True,
    # Ranges this code supports; requirements.lock pins the exact, tested set.
    install_requires=[
        "tfx[kfp]>=1.16,<1.17",
        "tensorflow>=2.16,<2.17",
        "tf-keras>=2.16,<2.17",
        "tensorflow-recommenders>=0.7.7,<0.8",
        "tensorflow-serving-api>=2.16,<2.17",
        "apache-beam[gcp]>=2.59,<2.60",
        "numpy>=1.22,<2",
        "matplotlib>=3.7",
    ],
    # scann: the approximate stage-1 index of a two-stage recommend (retrieval_index="scann").
    extras_require={"dev": ["pytest", "pytest-xdist", "ruff"], "scann": ["scann>=1.3.2,<1.4"]},
    entry_points={"console_scripts": ["ccl4rec=tf_ccl4rec.cli:main"]},
)
