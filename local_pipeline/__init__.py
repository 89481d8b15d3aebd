"""The local pipeline: mm-processor end to end on one machine, on the embedded AWS emulator.

    awsenv     moto's ThreadedMotoServer on loopback, with per-caller request counting
    provision  the emulated resources, created from infrastructure.wiring.WiringPlan
    workers    one process per function instance running the real handler (warm between invocations)
    kafka      the MSK event source mapping (partial batch responses, bounded retries, on-failure)
    fargate    a fake ECS endpoint running each scorer task as a real process, emitting STOPPED events
    lambda_endpoint  a fake Lambda Invoke endpoint (asynchronous invocations of the completion function)
    engine     wires it all together and runs records to their final states
    tracker    decides each record's final state from what the pipeline left behind
    report     the JSON report and the terminal summary; cli: `mm-processor local run` / `status`
    drift      compares the synthesized stacks' wiring with what was created locally

See docs/local-pipeline.md and decisions 060-069 (and 008 for the reconciliation of lost STOPPED events).
"""
