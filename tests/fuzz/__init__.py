"""Property-based fuzzing of each function's input (router records, SQS bodies, ECS events).

`strategies` holds the world the inputs are aimed at and the hostile values; `kafka_inputs`, `sqs_inputs` and
`ecs_inputs` build each function's inputs from real shapes (tests/builders.py). One checker per function
(`*_checker.py`) drives the real logic and returns the findings (`findings.py`) for one input, judged by
`oracles.py`. `targets.py` pairs each strategy with its checker: the tests here run a few hundred inputs per
function with a fixed seed; `benchmarks/fuzz.py` runs the same targets with >= 10,000.
"""
