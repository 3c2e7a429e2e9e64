"""Coordination models, Dask runner, AC validation, results and command line.

The public names (listed in ``__init__.pyi``) are imported on first use, so that
``workbench --help`` and ``workbench --version`` load neither pandapower, Pyomo, xarray
nor Dask.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
