"""Pure rules, no I/O: who may do what, who is offered a consult, when a round recurs, which passwords pass.

Imports only `server.policy` and `server.contract` (tests/policy/test_imports.py checks it)."""
