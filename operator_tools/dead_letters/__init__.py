"""Dead letters of an environment, per queue kind (decision 110): what is in each DLQ, what a message is about, and
how it goes back.

- challenge DLQ `mm-<env>-ch-<id>-dlq`: the body is the routed submission (SQS moved it after the last receive);
  redrive: SQS `StartMessageMoveTask` back to its source queue; where the endpoint lacks it (the emulator), a
  receive/send/delete move to the challenge queue.
- fan-out DLQ `mm-<env>-fanout-dlq`: the routed submission SNS could not deliver; redrive: sent to the challenge
  queue its `challengeId` names.
- completion DLQ `mm-<env>-completion-dlq`: an EventBridge target DLQ event, or a Lambda on-failure record;
  redrive: the event invoked into the completion function (async), deleted only after the invoke was accepted.

The router's on-failure bucket is not a queue: `router_failures` replays its records into the router.

One module per concern: `queues` (the inventory and peeking), `decode` (a message as an operator reads it),
`redrive` (moving messages back), `router_failures` (the bucket).
"""
