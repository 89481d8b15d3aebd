"""Capacity: caps on running scorer tasks, lossless waiting, priorities and fairness (decisions 093, 094).

- `models`: priority classes and the challenge's / environment's caps (pydantic, from SSM).
- `config`: the environment's caps parameter, cached (`EnvironmentCapacityLoader`).
- `store`: the capacity table and every slot transition, each one DynamoDB transaction (`CapacityStore`).
- `dispatcher`: which waiting runs get the free slots, fairly (`Dispatcher`).
- `reconciler`: corrects slot drift against the running tasks (`SlotReconciler`).

Nothing is imported here: `mm_contracts.models.challenge` imports `capacity.models`, and the store imports the models.
"""
