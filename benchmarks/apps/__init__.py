"""One small app per server, each serving the same workloads (``benchmarks/README.md``).

Every app is started from the repository root as
``python -m benchmarks.apps.NAME_app PORT`` (or with ``BENCH_PORT`` set), and finds the
static folder in ``BENCH_STATIC_DIR``.
"""
