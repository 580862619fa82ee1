"""corkweb's benchmark suite: the same workloads on corkweb and its peers.

Run ``python -m benchmarks --help`` from the repository root, and see
``benchmarks/README.md``.
"""
