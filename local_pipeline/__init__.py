"""The local pipeline: mm-processor end to end on one machine, on the embedded AWS emulator (development only).

One room per job (decision 102):

    engine           the lifecycle: start and stop everything, apply a scenario, run records to their final
                     states (`LocalPipeline.run`) or serve until stopped (`LocalPipeline.serve`)
    awsenv           the embedded AWS: moto in its own processes (emulator/), the engine's clients and front door
    emulator/        the emulator processes: moto per service group, counted by caller, service and operation;
                     the pinned reaches into moto (DynamoDB transactions, answers, queries; decision 115)
    provision        the emulated resources, created from infrastructure.wiring.WiringPlan
    deviations       where the local run knowingly differs from the deployed wiring (time compressed)
    function_env     each worker's environment (the stack's, the runtime's, the local endpoints) and setup hook
    workers          one process per function instance running the real handler (warm between invocations)
    hooks            the setup hooks run inside a worker (fault plan, the sweeper's advanced deadlines)
    event_sources    AWS's side: the Kafka and SQS event source mappings, the rule target, the schedule
    kafka            the MSK event source mapping (partial batch responses, bounded retries, on-failure)
    record_ids       an input record's ids, read by the router's own decoding (router_lambda.records)
    fakes            the fake Fargate and the fake Lambda, wired to the emulator
    fargate/         a fake ECS (tasks, RunTask validation, control plane, scorer processes, events, gauge,
                     the HTTP endpoint on `loopback`)
    lambda_endpoint  a fake Lambda Invoke endpoint (asynchronous invocations of the completion function)
    task_definitions the scorer task definitions the fake Fargate holds
    results          reading results: observations, summations, task run keys, busy or quiet, slots held
    tracker          decides each record's final state from what the pipeline left behind
    record_results   the tracker's data: the report's final states, observations, record and run results
    limits           how long a run may take, and when it ends (`RunWatch`)
    outcome          the run's outcome (what the report needs)
    report           the JSON report and the terminal summary
    scenario         input records, scorer behaviours and faults
    local_run        `mm-processor local run` (the command; the entry point is operator_tools.cli)

See docs/local-pipeline.md and decisions 060-069, 090, 098 and 102 (and 008 for the reconciliation of lost
STOPPED events).
"""
