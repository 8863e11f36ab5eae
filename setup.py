"""Packaging beyond pyproject.toml: the wheel carries the repository's top-level ``models/`` and
``resources/`` folders as the packages ``explorer._models`` and ``explorer._resources``, which
``explorer/assets.py`` finds with importlib.resources (an editable install maps them the same way)."""

from setuptools import find_packages, setup

BUNDLED = {"explorer._models": "models", "explorer._resources": "resources"}

setup(
    packages=find_packages(include=["explorer", "explorer.*"]) + list(BUNDLED),
    package_dir=BUNDLED,
    package_data={"explorer": ["py.typed"], **{name: ["**/*"] for name in BUNDLED}},
)
