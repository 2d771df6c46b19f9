"""MHHS test data pipeline: manufactures matched half-hourly consumption at market scale.

Layering (data flows one way): ``spec -> core -> plan -> formats -> io``, wrapped by
``runner`` (one work unit), ``distributed`` (the only Dask module) and, outside the
library, ``flows`` (Prefect). The library never imports Prefect.
"""

__version__ = "0.1.0"
