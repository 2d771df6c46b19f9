"""HOW to generate: pure, deterministic numpy/pyarrow. No Dask, Prefect, fsspec or clocks."""
