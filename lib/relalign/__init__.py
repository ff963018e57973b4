"""relalign: reliability-aware weak-to-strong alignment, as a reproducible study.

The pipeline, one module a step:

    data -> prompts -> scoring (weak labels) -> reliability -> selection -> learners (head | lora)
         -> evaluation -> plots,   with models (hub / local / registry) beside them,
    and study (the steps the notebooks call), runner and cli on top.

``reliability``, ``selection`` and ``evaluation`` are pure functions without torch.
"""

__version__ = "0.1.0"
