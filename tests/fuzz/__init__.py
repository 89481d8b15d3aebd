"""Property-based fuzzing of each function's input (router records, SQS bodies, ECS events).

`strategies` generates hostile inputs mutated from real shapes (tests/builders.py), `harness` drives the
real logic and returns the findings (property violations) for one input. The tests here run a few hundred
inputs per function with a fixed seed; `benchmarks/fuzz.py` runs the same strategies with >= 10,000.
"""
