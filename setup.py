"""Packaging beyond pyproject.toml: the repository's top-level ``models/`` and ``resources/``
folders go into the wheel as ``explorer/_models`` and ``explorer/_resources``, where
``explorer/assets.py`` finds them with importlib.resources. (An editable install reads them
from the checkout.)"""

from setuptools import find_packages, setup

BUNDLED = {"explorer._models": "models", "explorer._resources": "resources"}

setup(
    packages=find_packages(include=["explorer", "explorer.*"]) + list(BUNDLED),
    package_dir=BUNDLED,
    package_data={"explorer": ["py.typed"], **{name: ["**/*"] for name in BUNDLED}},
)
