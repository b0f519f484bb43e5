"""The bundled seed pages and example subscribers, installed as ``digest.seeds``.

This folder stays at the project's top level and is mapped into the package when it is built
(``[tool.setuptools.package-dir]`` in pyproject.toml); this file makes it a package so that the
code finds it with ``importlib.resources`` in a wheel, an editable install and a checkout alike.
"""
