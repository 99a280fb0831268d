"""The formula library: one module per topic, each registering its quantities.

Importing this package registers every topic (the list below is the whole library; a module that fails to
import is a failure, not a topic that quietly goes missing).
"""

from derive.formulas import (  # noqa: F401  (each module registers its quantities)
    attention,
    cost,
    flops,
    kv_cache,
    measured,
    memory,
    numerics,
    ops,
    parallel,
    params_quantities,
    plan,
    positional,
    rules,
    serving,
    throughput,
    training,
    workbook_rules,
)
