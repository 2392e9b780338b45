"""Packaging beside pyproject.toml (which holds the metadata): the repository's top-level
assets/ folder ships inside the package as tts_explorer/assets, package data that
tts_explorer/assets.py finds, a mapping pyproject.toml alone cannot state."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["tts_explorer", "tts_explorer.*"]) + ["tts_explorer.assets"],
    package_dir={"tts_explorer.assets": "assets"},
    package_data={"tts_explorer.assets": ["**/*"]},
)
