from setuptools import find_packages, setup

setup(
    name="dass",
    version="0.1.0",
    description="Distillation-aware student search on unseen datasets (DaSS, ICLR 2023), re-implemented",
    python_requires=">=3.10",
    packages=find_packages(include=["dass", "dass.*"]),
    package_data={"dass": ["data/*.tsv", "assets/**/*"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy>=1.24",
        "scipy>=1.10",
        "tqdm>=4.60",
        "pyyaml>=6.0",
        "requests>=2.28",
        # plots of tables and search results; its bundled fonts also render the built-in glyph datasets
        "matplotlib>=3.7",
        # PIL: glyph rendering and the reference per-image loader path
        "pillow>=9.0",
        # boosted trees of the proxy ensemble and the predictor's tree prior (HistGradientBoostingRegressor;
        # its fitted trees are read from the private _predictors node arrays, hence the upper bound)
        "scikit-learn>=1.3,<1.10",
    ],
    extras_require={
        # submitit: SLURM job arrays for the database build (local executor in tests)
        "slurm": ["submitit>=1.4"],
        # onnx, onnxruntime: python -m dass.export writes ONNX and checks it against torch
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
        # pytest-xdist: the suite runs on every core (pytest.ini: -n auto), ~2x faster on 2 cores
        "test": ["pytest>=7", "pytest-xdist>=3.5", "submitit>=1.4", "onnx>=1.14", "onnxruntime>=1.16"],
    },
)
