"""One BLAS/OpenMP thread per process: the package's own limit, whatever the environment says.

Scikit-learn's gradient boosting (OpenMP) and NumPy's BLAS start one thread per core by
default; on a shared two-core machine those pools fight the Dask workers and HiGHS for
the cores (forecaster fitting was measured several times slower). The command line, every
Dask task and the test session call :func:`limit_threads`; child processes (Dask workers)
inherit the environment variables it sets.
"""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

__all__ = ["THREAD_ENV_VARS", "limit_threads"]

#: environment variables read by OpenMP and the BLAS libraries when they load
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_threads(n_threads: int = 1) -> None:
    """Limit BLAS and OpenMP thread pools of this process (and its children) to ``n_threads``.

    Libraries already loaded are limited through ``threadpoolctl``; libraries loaded
    later, and child processes, read the environment variables set here.

    Parameters
    ----------
    n_threads : int
        Threads per pool (>= 1).
    """
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(n_threads)
    threadpool_limits(limits=n_threads)
