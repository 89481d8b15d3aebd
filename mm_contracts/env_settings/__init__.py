"""Each function's environment-config model in a module of its own; `mm_contracts.settings` is the index.

One module per function, so that a function's cold start builds its own settings model and the base, never the
other functions' (decision 112). Import the models from `mm_contracts.settings`.
"""
