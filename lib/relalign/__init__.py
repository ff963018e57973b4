"""relalign: reliability-aware weak-to-strong alignment, as a reproducible study.

The pipeline, one module a step:

    data -> prompts -> scoring (weak labels) -> reliability -> selection -> learners (head | lora)
         -> evaluation -> plots,   with models (hub / local / registry) beside them,
    and study (the steps the notebooks call), runner and cli on top.

``reliability``, ``selection`` and ``evaluation`` are pure functions without torch.
"""

import warnings

# tqdm.auto (imported by transformers and datasets) warns in notebooks without ipywidgets; the
# study uses plain text progress bars, which read well in stored notebook outputs.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
