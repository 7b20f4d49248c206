"""A Django app the benchmark adds to the baked project (bench_settings.py).

Its ``tasks`` module is the backend's driver, copied here from
``templates/backends/<backend>/benchmark.py``: a no-op task that records
when it started, so every backend is measured the same way, from these rows.
"""
