"""`facelab bench`: extract, train and merge speed at fixed standard settings, as a table and bench.json.

``facelab.bench.runner.run_benchmarks`` is the library call; ``stages`` holds one measuring function per step,
``measure`` the shared tools (peak memory, matmul peak).
"""
