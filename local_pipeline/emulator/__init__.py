"""The embedded AWS's own processes (decision 115): moto off the engine's interpreter.

    server                 one emulator process: moto's apps for a group of services, each request counted
    processes              the parent's side: spawn, counts, stop; `forward` (the engine's front door)
    counting               `RequestCounter`: requests by caller, service and operation
    dynamodb_transactions  TransactWriteItems rolling back only the items it names (a reach into moto, pinned)
    dynamodb_responses     items in DynamoDB answers serialized as JSON (a reach into moto, pinned)
    dynamodb_queries       a Query reads its partition or index matches, not the whole table sorted (a reach, pinned)
    dynamodb_expressions   each update expression parsed once (a reach into moto, pinned)
    dynamodb_validation    update expressions validated without per-node map building, generic copies and
                           re-running the checks of the AST alone (a reach into moto, pinned)
    sqs_receive            ReceiveMessage without a pass over the queue per message (a reach into moto, pinned)
    services_delivery      SendMessage without counting the queue, EventBridge input paths parsed once (a reach, pinned)

`local_pipeline.awsenv.LocalAws` starts them and is what the rest of the harness uses.
"""
